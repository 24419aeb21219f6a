"""Case management of subjects: the links between customers and properties."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from sidecar.api.cases import bp
from sidecar.api.endpoint import Input, endpoint
from sidecar.api.responses import created, json_response
from sidecar.api.service_call import service_call
from sidecar.register import subjects
from sidecar.register.references import UPRN_PATTERN, normalise_ref
from sidecar.register.rules import Invalid


class LinkBody(Input):
    property: str = Field(
        min_length=1, description="UPRN, digits only", json_schema_extra={"pattern": UPRN_PATTERN}
    )

    @field_validator("property")
    @classmethod
    def _canonical(cls, value: str) -> str:
        try:
            return normalise_ref("property", value)
        except Invalid as exc:
            raise ValueError(exc.message) from None


@endpoint(
    bp,
    "/subjects/customer/<ref>/links",
    methods=["POST"],
    action="subject.link",
    body=LinkBody,
    summary="Link a customer to a property (UPRN): the property's banner shows their flags",
    tags=["case management"],
    responses={201: "Linked", 409: "Already linked", 422: "Bad reference"},
)
def link_property(ref: str, body: LinkBody) -> Any:
    with service_call("subject.link", subject_kind="customer", subject_ref=ref) as ctx:
        prop = subjects.link(ctx, ref, body.property)
        customer = subjects.require(ctx.session, "customer", ref)
        return created({"customer": customer.ref, "property": prop.ref, "linked": True})


@endpoint(
    bp,
    "/subjects/customer/<ref>/links/<uprn>",
    methods=["DELETE"],
    action="subject.link",
    summary="Unlink a customer from a property",
    tags=["case management"],
    responses={204: "Unlinked", 404: "Not linked"},
)
def unlink_property(ref: str, uprn: str) -> Any:
    with service_call("subject.link") as ctx:
        subjects.unlink(ctx, ref, uprn)
    return "", 204


@endpoint(
    bp,
    "/subjects/customer/<ref>/links",
    action="flag.read",
    summary="The properties a customer is linked to",
    tags=["case management"],
)
def list_links(ref: str) -> Any:
    with service_call("flag.read") as ctx:
        customer = subjects.find(ctx.session, "customer", ref)
        props = subjects.linked_properties(ctx.session, customer) if customer else []
        return json_response(
            {
                "customer": subjects.normalise_ref("customer", ref),
                "properties": [p.ref for p in props],
            }
        )
