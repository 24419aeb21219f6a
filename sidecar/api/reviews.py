"""Case management of reviews: recording one, and the flags whose review is due."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from sidecar.api.cases import bp
from sidecar.api.endpoint import endpoint
from sidecar.api.inputs import TermsIn
from sidecar.api.responses import created, json_response
from sidecar.api.service_call import service_call
from sidecar.register import flags, reviews


class ReviewBody(TermsIn):
    outcome: Literal["continue", "vary", "remove"]
    notes: str = Field(min_length=1, max_length=20000)


@endpoint(
    bp,
    "/flags/<flag_id>/reviews",
    methods=["POST"],
    action="review.record",
    body=ReviewBody,
    summary="Record a review: continue (sets the next review date), vary or remove",
    tags=["case management"],
    responses={201: "Recorded", 409: "Flag not active"},
)
def record_review(flag_id: str, body: ReviewBody) -> Any:
    with service_call("review.record", flag_id=flag_id) as ctx:
        review, letter = reviews.record_review(
            ctx, flag_id, body.outcome, body.notes, body.change()
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
