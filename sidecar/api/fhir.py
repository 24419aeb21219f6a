"""FHIR R4 endpoints: Flags by subject and by id, the catalogues' CodeSystems, the metadata.

A Flag is what the banner shows, read through the banner's own service, so each read is the
same durable `banner.read` entry and fails closed the same way. Every error under /fhir/r4,
whoever raised it (sign-in, the policy, the audit store, routing), is an OperationOutcome.
"""

from __future__ import annotations

import json
import re
from importlib.metadata import PackageNotFoundError, version
from typing import Any
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, request
from pydantic import Field

from sidecar.api.endpoint import INT_PARAM_MAX, Input, endpoint
from sidecar.audit import writer as audit
from sidecar.errors import Problem
from sidecar.fhir import flags as fhir_flags
from sidecar.fhir import resources
from sidecar.lookup import cache as status_cache
from sidecar.lookup import service as lookup
from sidecar.register.references import REF_MAX_LENGTH, normalise_ref
from sidecar.register.rules import Invalid
from sidecar.runtime import current_runtime
from sidecar.settings import Settings

bp = Blueprint("fhir", __name__, url_prefix=resources.BASE_PATH)

JSON_FORMATS = frozenset({"json", "application/json", "application/fhir+json"})
# A FHIR id (https://hl7.org/fhir/R4/datatypes.html#id); ours are 32 hex digits.
_FLAG_ID = re.compile(r"^[0-9a-f]{32}$")
_UNDATED = resources.FlagPeriod(None, None)
# system|value with a URI system: the search's longest sensible value.
SUBJECT_MAX_LENGTH = 256 + 1 + REF_MAX_LENGTH


def fhir_response(body: dict[str, Any], status: int = 200) -> Response:
    """A FHIR JSON answer, never cached: a Flag is as current as the banner."""
    response = Response(json.dumps(body, ensure_ascii=False), status=status)
    response.mimetype = resources.MEDIA_TYPE
    response.headers["Cache-Control"] = "no-store"
    return response


def _under_fhir(path: str) -> bool:
    return path == resources.BASE_PATH or path.startswith(resources.BASE_PATH + "/")


@bp.after_app_request
def _problems_as_operation_outcomes(response: Response) -> Response:
    # App-wide, so that a 404 for an unknown resource type (which no view of this blueprint
    # sees) is answered the FHIR way too. Changed in place: other hooks' headers stay.
    if not _under_fhir(request.path) or response.mimetype != "application/problem+json":
        return response
    problem = response.get_json(silent=True) or {}
    status = response.status_code
    if status == 422:
        # FHIR keeps 422 for a create or update against business rules; bad search input is
        # 400 (https://hl7.org/fhir/R4/search.html#errors).
        status = 400
    detail = str(problem.get("detail") or problem.get("title") or "the request failed")
    response.status_code = status
    fields = [
        item
        for item in problem.get("errors") or []
        if isinstance(item, dict) and {"field", "message"} <= set(item)
    ]
    outcome = resources.operation_outcome(status, detail, fields)
    response.set_data(json.dumps(outcome, ensure_ascii=False))
    response.mimetype = resources.MEDIA_TYPE
    return response


@bp.before_request
def _json_only() -> None:
    asked = request.args.get("_format")
    if asked is not None and asked not in JSON_FORMATS:
        raise Problem(406, "not-acceptable", f"query field '_format': only JSON, not {asked!r}")
    accept = request.accept_mimetypes
    if request.headers.get("Accept") and not (accept.accept_json or resources.MEDIA_TYPE in accept):
        raise Problem(406, "not-acceptable", f"this server answers {resources.MEDIA_TYPE} only")


class FhirQuery(Input):
    """What every FHIR read accepts: the format, which must be JSON."""

    format: str | None = Field(
        None,
        alias="_format",
        max_length=64,
        json_schema_extra={"enum": sorted(JSON_FORMATS)},
        description="json, application/json or application/fhir+json; any other is refused (406)",
    )


class FlagSearch(FhirQuery):
    subject_identifier: str | None = Field(
        None,
        alias="subject:identifier",
        min_length=1,
        max_length=SUBJECT_MAX_LENGTH,
        description="[system|]value: the customer's CRM reference or the property's UPRN",
    )
    subject: str | None = Field(
        None,
        min_length=1,
        max_length=SUBJECT_MAX_LENGTH,
        description="Patient/{CRM reference} or Location/{UPRN}",
    )
    count: int | None = Field(
        None, alias="_count", ge=0, le=INT_PARAM_MAX, description="Flags per page"
    )
    offset: int = Field(
        0, alias="_offset", ge=0, le=INT_PARAM_MAX, description="Flags to skip (paging)"
    )


def _bad(field: str, message: str) -> Problem:
    return Problem(
        400,
        "invalid-request",
        f"query field '{field}': {message}",
        errors=[{"field": field, "message": message}],
    )


def _searched_subject(settings: Settings, query: FlagSearch) -> tuple[str, str, str]:
    """The kind and canonical reference the search names, with the parameter that named it."""
    if (query.subject_identifier is None) == (query.subject is None):
        raise _bad("subject:identifier", "name one subject, by subject:identifier or subject")
    if query.subject_identifier is not None:
        field, given = "subject:identifier", query.subject_identifier
        system, bar, ref = given.rpartition("|")
        systems = {
            resources.identifier_system(settings, kind): kind for kind in resources.SUBJECT_TYPES
        }
        if not bar:
            kind = "customer"
        elif system in systems:
            kind = systems[system]
        else:
            raise _bad(field, f"the system must be one of {', '.join(systems)}")
    else:
        field, given = "subject", query.subject or ""
        kinds = {fhir_type: kind for kind, fhir_type in resources.SUBJECT_TYPES.items()}
        fhir_type, slash, ref = given.partition("/")
        if not slash or fhir_type not in kinds:
            raise _bad(field, "must be Patient/{CRM reference} or Location/{UPRN}")
        kind = kinds[fhir_type]
    try:
        return kind, normalise_ref(kind, ref), field
    except Invalid as exc:
        raise _bad(field, exc.message) from None


def _page_links(
    settings: Settings, field: str, value: str, count: int, offset: int, total: int
) -> dict[str, str]:
    def at(start: int) -> str:
        query = urlencode({field: value, "_count": count, "_offset": start})
        return f"{resources.base_url(settings)}/Flag?{query}"

    links = {"self": at(offset)}
    if count and offset + count < total:
        links["next"] = at(offset + count)
    if offset > 0:
        links["previous"] = at(max(0, offset - max(count, 1)))
    return links


@endpoint(
    bp,
    "/Flag",
    action="banner.read",
    query=FlagSearch,
    summary="FHIR R4: the Flags a subject's banner shows, as a searchset Bundle; each call audited",
    tags=["fhir"],
    responses={
        200: "A searchset Bundle of Flag (none when the subject has no flag)",
        400: "No subject, or an unknown identifier system or malformed reference",
        503: "The read could not be recorded, so nothing was disclosed",
    },
)
def search_flags(query: FlagSearch) -> Response:
    runtime = current_runtime()
    settings = runtime.settings
    kind, ref, field = _searched_subject(settings, query)
    count = min(
        settings.fhir.page_size if query.count is None else query.count,
        settings.fhir.page_size_max,
    )
    status = lookup.viewed_banner(
        runtime.database, status_cache.of(current_app), settings, kind, ref
    )
    shown = status["flags"]
    page = shown[query.offset : query.offset + count]
    with runtime.database.reader.connect() as connection:
        periods = fhir_flags.periods(connection, [item["id"] for item in page])
    flags = [
        resources.flag(settings, item, kind, ref, periods.get(item["id"], _UNDATED))
        for item in page
    ]
    value = query.subject_identifier if field == "subject:identifier" else query.subject
    links = _page_links(settings, field, value or "", count, query.offset, len(shown))
    return fhir_response(
        resources.searchset(flags, len(shown), links, resources.base_url(settings))
    )


@endpoint(
    bp,
    "/Flag/<flag_id>",
    action="banner.read",
    query=FhirQuery,
    summary="FHIR R4: one Flag a banner shows, by id; every call audited",
    tags=["fhir"],
    responses={
        200: "The Flag",
        404: "No active flag of that id",
        503: "The read could not be recorded, so nothing was disclosed",
    },
)
def read_flag(flag_id: str, query: FhirQuery) -> Response:
    runtime = current_runtime()
    settings = runtime.settings
    subject = None
    if _FLAG_ID.match(flag_id):
        with runtime.database.reader.connect() as connection:
            subject = fhir_flags.shown_subject(connection, flag_id)
    if subject is None:
        audit.record_denied("banner.read", "no such flag", flag_id=flag_id[:32])
        raise Problem(404, "not-found", f"no active Flag {flag_id[:64]}")
    kind, ref = subject
    status = lookup.viewed_banner(
        runtime.database, status_cache.of(current_app), settings, kind, ref, flag_id=flag_id
    )
    own = [f for f in status["flags"] if f["id"] == flag_id and "linked" not in f]
    if not own:
        # It ended between the two reads: what the banner shows now has no such flag.
        raise Problem(404, "not-found", f"no active Flag {flag_id}")
    with runtime.database.reader.connect() as connection:
        period = fhir_flags.periods(connection, [flag_id]).get(flag_id, _UNDATED)
    return fhir_response(resources.flag(settings, own[0], kind, ref, period))


@endpoint(
    bp,
    "/CodeSystem/<code_system>",
    action="banner.read",
    query=FhirQuery,
    summary="FHIR R4: the council's flag categories, levels or contact restrictions",
    tags=["fhir"],
    responses={200: "The CodeSystem", 404: "No such CodeSystem"},
)
def read_code_system(code_system: str, query: FhirQuery) -> Response:
    if code_system not in resources.CODE_SYSTEMS:
        known = ", ".join(resources.CODE_SYSTEMS)
        raise Problem(404, "not-found", f"no CodeSystem {code_system[:64]}; there are {known}")
    return fhir_response(resources.code_system(current_runtime().settings, code_system))


def _software_version() -> str:
    try:
        return version("forewarn")
    except PackageNotFoundError:
        return "unknown"


@endpoint(
    bp,
    "/metadata",
    public=True,
    action=None,
    query=FhirQuery,
    summary="FHIR R4: this server's CapabilityStatement",
    tags=["fhir"],
)
def metadata(query: FhirQuery) -> Response:
    statement = resources.capability_statement(current_runtime().settings, _software_version())
    return fhir_response(statement)
