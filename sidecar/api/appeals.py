"""Case management of appeals: lodged in writing, decided by an uninvolved Service Director."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from sidecar.api.cases import bp
from sidecar.api.endpoint import Input, endpoint
from sidecar.api.inputs import Day, TermsIn
from sidecar.api.responses import created, json_response
from sidecar.api.service_call import service_call
from sidecar.register import appeals, flags
from sidecar.register.case_models import Appeal

WINDOWS_PAGE = 25


class AppealBody(Input):
    received_on: Day | None = Field(None, description="when the appeal arrived; default today")
    grounds: str | None = Field(None, max_length=20000)
    handling_manager: str | None = Field(
        None,
        min_length=1,
        max_length=128,
        description="user id of the Senior Manager handling it; only a holder of "
        "appeal.assign may name one (default: the panel's Senior Manager)",
    )


class HandlerBody(Input):
    handling_manager: str = Field(
        min_length=1, max_length=128, description="user id of a Senior Manager"
    )


def appeal_json(appeal: Appeal, flag_id: str) -> dict[str, Any]:
    return {
        "id": appeal.id,
        "flag_id": flag_id,
        "state": "pending" if appeal.outcome is None else "decided",
        "received_on": appeal.received_on.isoformat(),
        "handling_manager": {"id": appeal.handling_manager, "name": appeal.handling_manager_name}
        if appeal.handling_manager
        else None,
    }


class AppealDecisionBody(TermsIn):
    outcome: Literal["upheld", "varied", "removed"]
    reasons: str = Field(min_length=1, max_length=20000)
    role: str | None = Field(
        None,
        min_length=1,
        max_length=32,
        description="the appeal-deciding role decided in (settings: appeals.decider_roles); "
        "needed only by someone holding more than one",
    )


@endpoint(
    bp,
    "/flags/<flag_id>/appeals",
    methods=["POST"],
    action="appeal.lodge",
    body=AppealBody,
    summary="Record an appeal received in writing; 409 with the closing date outside the window",
    tags=["case management"],
    responses={
        201: "Pending",
        403: "handling_manager named without appeal.assign, or naming yourself",
        409: "Window closed, flag not active, or an appeal is pending",
        422: "handling_manager is not a Senior Manager in the staff directory",
    },
)
def lodge_appeal(flag_id: str, body: AppealBody) -> Any:
    with service_call("appeal.lodge", flag_id=flag_id) as ctx:
        appeal = appeals.lodge(
            ctx,
            flag_id,
            received_on=body.received_on,
            grounds=body.grounds,
            handling_manager=body.handling_manager,
        )
        return created(appeal_json(appeal, flag_id))


@endpoint(
    bp,
    "/flags/<flag_id>/appeals/<appeal_id>/handling-manager",
    methods=["POST"],
    action="appeal.assign",
    body=HandlerBody,
    summary="Assign the Senior Manager who handles a pending appeal (recorded in the history)",
    tags=["case management"],
    responses={
        200: "Assigned; the banner names them",
        403: "Naming yourself",
        409: "The appeal was decided",
        422: "Not a Senior Manager in the staff directory, or the lodger",
    },
)
def assign_handling_manager(flag_id: str, appeal_id: str, body: HandlerBody) -> Any:
    with service_call("appeal.assign", flag_id=flag_id) as ctx:
        appeal = appeals.assign_handler(ctx, flag_id, appeal_id, body.handling_manager)
        return json_response(appeal_json(appeal, flag_id))


@endpoint(
    bp,
    "/flags/<flag_id>/appeals/<appeal_id>/decision",
    methods=["POST"],
    action="appeal.decide",
    body=AppealDecisionBody,
    summary="A decider's decision on an appeal (upheld, varied, removed): by default an "
    "uninvolved Service Director's, which decides it; where the settings ask several to agree "
    "(appeals.deciders_needed), pending until they do. Refused with 403 to anyone involved in "
    "the case in a role that must be uninvolved",
    tags=["case management"],
    responses={
        200: "Decided (outcome letter written), or recorded and awaiting the other deciders",
        403: "Involved in the case, or holding no role that decides appeals",
        409: "Decided already, or this person or role has decided on the appeal",
    },
)
def decide_appeal(flag_id: str, appeal_id: str, body: AppealDecisionBody) -> Any:
    with service_call("appeal.decide", flag_id=flag_id) as ctx:
        appeal, letter = appeals.decide(
            ctx, flag_id, appeal_id, body.outcome, body.reasons, body.change(), body.role
        )
        flag = flags.load(ctx.session, flag_id)
        answer = {
            "appeal_id": appeal.id,
            "outcome": appeal.outcome,
            "flag_state": flag.state,
            "letter": letter.n if letter else None,
        }
        if ctx.settings.appeals.deciders_needed > 1:
            # Where several must agree, who has decided so far and whose decision is awaited.
            decided = appeals.decisions_of(ctx.session, appeal)
            answer["decisions"] = [
                {
                    "role": d.role,
                    "outcome": d.outcome,
                    "decided_by": {"id": d.decided_by, "name": d.decided_by_name},
                }
                for d in decided
            ]
            answer["awaiting"] = appeals.awaiting(ctx.settings, decided) if letter is None else []
        return json_response(answer)


class WindowsQuery(Input):
    page: int = Field(1, ge=1, le=10_000, description="page number, from 1")
    per_page: int = Field(WINDOWS_PAGE, ge=1, le=100, description="windows per page")


def window_json(window: appeals.OpenWindow) -> dict[str, Any]:
    flag = window.flag
    return {
        "flag_id": flag.id,
        "reference": flag.reference,
        "subject": {"kind": flag.subject.kind, "ref": flag.subject.ref},
        "level": flag.level,
        "notice": {"method": window.method, "on": window.told_on.isoformat()},
        "closes_on": window.closes_on.isoformat(),
    }


@endpoint(
    bp,
    "/appeal-windows",
    action="appeal.lodge",
    query=WindowsQuery,
    summary="Active flags whose notice has been given and whose appeal window is still open, "
    "no appeal pending: the closing date of each, the window closing first, first; paged",
    tags=["case management"],
)
def open_windows(query: WindowsQuery) -> Any:
    with service_call("appeal.lodge") as ctx:
        days = ctx.settings.policy.appeal_window_days
        today = ctx.now().date()
        windows, total = appeals.open_windows_page(
            ctx.session, today, days, query.page, query.per_page
        )
        return json_response(
            {
                "as_of": today.isoformat(),
                "window_days": days,
                "total": total,
                "page": query.page,
                "pages": max(1, -(-total // query.per_page)),
                "windows": [window_json(window) for window in windows],
            }
        )
