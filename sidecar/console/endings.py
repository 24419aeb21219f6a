"""Ending flags in the console: withdrawing one early, and expiring those past their end date."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, url_for
from sqlalchemy.orm import Session

from sidecar.audit import writer as audit
from sidecar.console.calls import call, read, show_refusal
from sidecar.console.case_forms import ExpireForm, WithdrawForm
from sidecar.console.formatting import uk_date
from sidecar.console.page import page, render
from sidecar.console.queues import flag_title, page_of, past_end_date, requested_page
from sidecar.console.reads import flag_case
from sidecar.register import flags
from sidecar.register.rules import Conflict, Invalid
from sidecar.runtime import Runtime
from sidecar.storage.database import utcnow

bp = Blueprint("endings", __name__, url_prefix="/console/flags")


@page(
    bp,
    "/<flag_id>/withdraw",
    methods=["GET", "POST"],
    action="flag.withdraw",
    summary="Withdraw a proposed or active flag, saying why (as POST /api/v1/flags/{id}/withdraw)",
)
def withdraw(flag_id: str) -> Any:
    form = WithdrawForm()
    if form.validate_on_submit():
        try:
            subject = call(
                "flag.withdraw",
                lambda ctx: _subject_of(flags.withdraw(ctx, flag_id, form.reason.data)),
                flag_id=flag_id,
            )
        except (Invalid, Conflict) as exc:
            show_refusal(form, exc, {"reason": "reason"}, "reason")
        else:
            flash("The flag is withdrawn: it no longer shows on the banner.", "success")
            return redirect(url_for("console.subjects.subject", **subject))
    flag, event = read(lambda session, runtime: flag_case(session, runtime, flag_id, now=utcnow()))
    audit.record(event)
    return render(
        "console/withdraw.html",
        status=422 if form.errors else 200,
        form=form,
        flag=flag,
        title="Withdraw the flag",
    )


def _subject_of(flag: Any) -> dict[str, str]:
    return {"kind": flag.subject.kind, "ref": flag.subject.ref}


@page(
    bp,
    "/expiry",
    methods=["GET", "POST"],
    action="flag.withdraw",
    summary="Active flags past their own end date, and ending them (as `forewarn flags expire`)",
)
def expiry() -> Any:
    form = ExpireForm()
    if form.validate_on_submit():
        ended = call("flag.withdraw", lambda ctx: len(flags.expire_due(ctx)))
        flash(f"{ended} flag{'s' if ended != 1 else ''} ended on their end date.", "success")
        return redirect(url_for(".expiry"))
    number = requested_page()
    today = utcnow().date()

    def rows(session: Session, _runtime: Runtime) -> Any:
        shown = page_of(session, past_end_date(today), number)
        shown.rows = [
            {
                "href": url_for(
                    "console.subjects.subject", kind=flag.subject.kind, ref=flag.subject.ref
                ),
                "title": flag_title(flag),
                "text": f"Its end date was {uk_date(flag.ends_on)}.",
            }
            for flag in shown.rows
        ]
        return shown

    return render("console/expiry.html", form=form, queue=read(rows), title="Flags past their end")
