"""Case management of telling the person: the notice, and the letters sent about a flag."""

from __future__ import annotations

from typing import Any, Literal

from flask_login import current_user
from pydantic import Field

from sidecar.api.cases import bp
from sidecar.api.endpoint import Input, endpoint
from sidecar.api.responses import created, html_response, json_response
from sidecar.api.service_call import service_call
from sidecar.audit import writer as audit
from sidecar.errors import Problem
from sidecar.lookup.service import may_read_details
from sidecar.policy import access
from sidecar.register import flags, notices
from sidecar.register.context import ServiceContext
from sidecar.register.models import Flag
from sidecar.register.rules import appeal_deadline


class NoticeBody(Input):
    method: Literal["letter", "withheld"]
    recipient_name: str | None = Field(None, max_length=300)
    recipient_address: str | None = Field(None, max_length=2000)
    legal_guidance_ref: str | None = Field(None, max_length=256)
    director_permission_by: str | None = Field(None, max_length=128)
    reason: str | None = Field(None, max_length=20000)


@endpoint(
    bp,
    "/flags/<flag_id>/notice",
    methods=["POST"],
    action="notice.issue",
    body=NoticeBody,
    summary="Send the decision letter, or record the exception (legal guidance, Service "
    "Director's permission, reason) that withholds it",
    tags=["case management"],
    responses={201: "Notice recorded", 409: "Not active, or already notified", 422: "Missing"},
)
def issue_notice(flag_id: str, body: NoticeBody) -> Any:
    with service_call("notice.issue", flag_id=flag_id) as ctx:
        notice, letter = notices.issue_notice(
            ctx,
            flag_id,
            body.method,
            recipient_name=body.recipient_name,
            recipient_address=body.recipient_address,
            legal_guidance_ref=body.legal_guidance_ref,
            director_permission_by=body.director_permission_by,
            reason=body.reason,
        )
        return created(
            {
                "flag_id": flag_id,
                "method": notice.method,
                "issued_at": notice.issued_at.isoformat(),
                "letter": letter.n if letter else None,
                "appeal_window_closes": appeal_deadline(
                    notice.issued_at.date(), ctx.settings.policy.appeal_window_days
                ).isoformat(),
            }
        )


@endpoint(
    bp,
    "/flags/<flag_id>/letters",
    action="flag.read",
    summary="The letters sent about a flag (numbers, kinds, dates, signatories)",
    tags=["case management"],
)
def list_letters(flag_id: str) -> Any:
    with service_call("flag.read", flag_id=flag_id) as ctx:
        flag = flags.load(ctx.session, flag_id)
        return json_response(
            {
                "flag_id": flag.id,
                "letters": [notices.letter_json(i) for i in notices.letters_of(ctx.session, flag)],
            }
        )


def _may_read_letters(ctx: ServiceContext, flag: Flag) -> bool:
    """Letters carry the reason: those who send letters, or who may read the details."""
    if access.decide(current_user, "notice.issue").allowed:
        return True
    return may_read_details(ctx.session, flag, ctx.now()).allowed


@endpoint(
    bp,
    "/flags/<flag_id>/letters/<int:n>",
    action="flag.read",
    summary="One letter as rendered (HTML, printable); audited before it is returned",
    tags=["case management"],
    confidential=True,
    responses={200: "text/html", 403: "Neither a letter sender nor involved", 410: "Purged"},
)
def read_letter(flag_id: str, n: int) -> Any:
    with service_call("letter.read", flag_id=flag_id) as ctx:
        flag = flags.load(ctx.session, flag_id)
        allowed = _may_read_letters(ctx, flag)
        kind, ref = flag.subject.kind, flag.subject.ref
        item = notices.letter(ctx.session, flag, n) if allowed else None
        body = item.unseal(ctx.keyring, "body") if item is not None else None
    if not allowed:
        audit.record_denied(
            "letter.read",
            "neither a letter sender nor involved in the case",
            flag_id=flag_id,
            subject_kind=kind,
            subject_ref=ref,
        )
        raise Problem(403, "forbidden", "letters are open to letter senders and those involved")
    if body is None:
        raise Problem(410, "purged", f"letter {n} was purged after the retention period")
    audit.record(
        audit.AuditEvent(
            action="letter.read",
            flag_id=flag_id,
            subject_kind=kind,
            subject_ref=ref,
            outcome_reason=f"letter {n}",
        )
    )
    return html_response(body)
