"""Case management of reviews: recording one, and the flags whose review is due."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from sidecar.api.cases import bp
from sidecar.api.endpoint import Input, endpoint
from sidecar.api.inputs import TermsIn
from sidecar.api.responses import created, json_response
from sidecar.api.service_call import service_call
from sidecar.register import flags, reviews
from sidecar.register.staff import name_of


class ReviewBody(TermsIn):
    outcome: Literal["continue", "vary", "remove"]
    notes: str = Field(min_length=1, max_length=20000)
    agreed_with: str | None = Field(
        None,
        min_length=1,
        max_length=128,
        description="user id of whoever the recommendations were agreed with (needed where the "
        "settings name reviews.agreed_with_role, e.g. the service's Senior Manager)",
    )


class ReviewAssignmentBody(Input):
    reviewers: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(
        min_length=1, max_length=10, description="user ids of the reviewers named"
    )


@endpoint(
    bp,
    "/flags/<flag_id>/review-assignments",
    methods=["POST"],
    action="review.assign",
    body=ReviewAssignmentBody,
    summary="Name who reviews an active flag next (replaces any open assignment; recorded in "
    "the history); only they may record the review",
    tags=["case management"],
    responses={
        201: "Assigned",
        403: "Assigning yourself",
        409: "Flag not active",
        422: "A reviewer not in the staff directory, or in no role that records reviews",
    },
)
def assign_reviewers(flag_id: str, body: ReviewAssignmentBody) -> Any:
    with service_call("review.assign", flag_id=flag_id) as ctx:
        rows = reviews.assign_reviewers(ctx, flag_id, body.reviewers)
        return created(
            {
                "flag_id": flag_id,
                "reviewers": [
                    {"id": r.reviewer, "name": name_of(ctx.session, r.reviewer)} for r in rows
                ],
                "assigned_at": rows[0].assigned_at.isoformat(),
            }
        )


@endpoint(
    bp,
    "/flags/<flag_id>/reviews",
    methods=["POST"],
    action="review.record",
    body=ReviewBody,
    summary="Record a review: continue (sets the next review date), vary or remove; only a "
    "reviewer the flag's review assignment names may",
    tags=["case management"],
    responses={201: "Recorded", 403: "Not named by the review assignment", 409: "Flag not active"},
)
def record_review(flag_id: str, body: ReviewBody) -> Any:
    with service_call("review.record", flag_id=flag_id) as ctx:
        review, letter = reviews.record_review(
            ctx, flag_id, body.outcome, body.notes, body.change(), agreed_with=body.agreed_with
        )
        flag = flags.load(ctx.session, flag_id)
        return created(
            {
                "id": review.id,
                "outcome": review.outcome,
                "flag_state": flag.state,
                "next_review_due": review.next_review_due.isoformat()
                if review.next_review_due
                else None,
                "letter": letter.n if letter else None,
                "parties": list(review.parties or []),
            }
        )


@endpoint(
    bp,
    "/reviews/due",
    action="flag.read",
    summary="Active flags whose review is due soon or overdue, and flags still awaiting notice",
    tags=["case management"],
)
def reviews_due() -> Any:
    with service_call("flag.read") as ctx:
        now = ctx.now()
        return json_response(
            {
                "as_of": now.date().isoformat(),
                "due_within_days": ctx.settings.lifecycle.review_due_soon_days,
                "flags": reviews.due(ctx.session, ctx.settings, now.date()),
                "notices_overdue": reviews.notices_overdue(ctx.session, ctx.settings, now),
            }
        )
