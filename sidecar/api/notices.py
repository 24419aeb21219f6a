"""Case management of telling the person: the notice, and the letters sent about a flag."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from sidecar.api.cases import bp
from sidecar.api.endpoint import Input, endpoint
from sidecar.api.responses import created, html_response, json_response
from sidecar.api.service_call import service_call
from sidecar.lookup import letters
from sidecar.register import flags, notices
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


@endpoint(
    bp,
    "/flags/<flag_id>/letters/<int:n>",
    action="flag.read",
    summary="One letter as rendered (HTML, printable), under the details rule (a live grant "
    "or a part in the case); audited before it is returned",
    tags=["case management"],
    confidential=True,
    responses={
        200: "text/html",
        403: "No live grant for the subject and no relationship to the flag",
        410: "Purged",
    },
)
def read_letter(flag_id: str, n: int) -> Any:
    with service_call(letters.LETTER_READ, flag_id=flag_id) as ctx:
        opened = letters.open_letter(ctx, flag_id, n)
    return html_response(letters.disclose(opened))


class GuidanceBody(Input):
    legal_guidance_ref: str = Field(min_length=1, max_length=256)
    reason: str = Field(min_length=1, max_length=20000)


@endpoint(
    bp,
    "/flags/<flag_id>/notice/guidance",
    methods=["POST"],
    action="notice.record_guidance",
    body=GuidanceBody,
    summary="The Head of Legal's guidance to withhold the decision letter; the letter is "
    "withheld only once a Service Director gives permission",
    tags=["case management"],
    responses={201: "Recorded, awaiting permission", 409: "Not active, or already notified"},
)
def record_guidance(flag_id: str, body: GuidanceBody) -> Any:
    with service_call("notice.record_guidance", flag_id=flag_id) as ctx:
        guidance = notices.record_guidance(ctx, flag_id, body.legal_guidance_ref, body.reason)
        return created(
            {
                "flag_id": flag_id,
                "legal_guidance_ref": guidance.legal_guidance_ref,
                "recorded_by": guidance.recorded_by,
                "awaiting": "director_permission",
            }
        )


@endpoint(
    bp,
    "/flags/<flag_id>/notice/permission",
    methods=["POST"],
    action="notice.permit_withheld",
    summary="A Service Director permits withholding the decision letter on the recorded legal "
    "guidance, in their own name: the notice is recorded as withheld",
    tags=["case management"],
    responses={201: "Notice recorded as withheld", 409: "No guidance, or already notified"},
)
def permit_withholding(flag_id: str) -> Any:
    with service_call("notice.permit_withheld", flag_id=flag_id) as ctx:
        notice = notices.permit_withholding(ctx, flag_id)
        return created(
            {
                "flag_id": flag_id,
                "method": notice.method,
                "legal_guidance_ref": notice.legal_guidance_ref,
                "director_permission_by": notice.director_permission_by,
                "issued_at": notice.issued_at.isoformat(),
                "appeal_window_closes": appeal_deadline(
                    notice.issued_at.date(), ctx.settings.policy.appeal_window_days
                ).isoformat(),
            }
        )


class RefusalBody(Input):
    reason: str = Field(min_length=1, max_length=notices.REFUSAL_MAX)


@endpoint(
    bp,
    "/flags/<flag_id>/notice/refusal",
    methods=["POST"],
    action="notice.permit_withheld",
    body=RefusalBody,
    summary="A Service Director refuses permission to withhold the decision letter, in their "
    "own name and with a reason the flag's history shows: the letter must then be sent, "
    "unless the Head of Legal records new guidance",
    tags=["case management"],
    responses={
        201: "Refusal recorded",
        409: "No guidance, permission already refused, or already notified",
    },
)
def refuse_withholding(flag_id: str, body: RefusalBody) -> Any:
    with service_call("notice.permit_withheld", flag_id=flag_id) as ctx:
        guidance = notices.refuse_withholding(ctx, flag_id, body.reason)
        return created(
            {
                "flag_id": flag_id,
                "legal_guidance_ref": guidance.legal_guidance_ref,
                "refused_by": guidance.refused_by,
                "refused_at": guidance.refused_at.isoformat() if guidance.refused_at else None,
                "reason": guidance.refusal_reason,
            }
        )
