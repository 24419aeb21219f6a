"""Council IT's page for a member of staff's sign-in sessions: see them, and end them all.

For a leaver or a lost device: ending them is `forewarn sessions end` from the console, the
same service and the same audit entry, and it takes effect at once on every instance.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, request, url_for
from govuk_frontend_wtf.wtforms_widgets import GovSubmitInput, GovTextArea
from wtforms import SubmitField, TextAreaField
from wtforms.validators import InputRequired, Length

from sidecar.console.calls import call, read
from sidecar.console.forms import ConsoleForm, user_id_field
from sidecar.console.page import page, render
from sidecar.identity import staff_sessions

bp = Blueprint("staff_access", __name__, url_prefix="/console")

ACTION = "sessions.manage"


def staff_user_field(**kwargs: Any) -> Any:
    """Whose sessions: the same field, and the same checks, to find them and to end them."""
    return user_id_field("User id", "Enter the member of staff's user id", **kwargs)


class FindStaffForm(ConsoleForm):
    """Whose sessions to show; a GET form that changes nothing."""

    class Meta(ConsoleForm.Meta):
        csrf = False

    user = staff_user_field(description="As they sign in, for example jo.lane")
    submit = SubmitField("Show their sessions", widget=GovSubmitInput())


class EndSessionsForm(ConsoleForm):
    """Shown below the find form on one page: its boxes have ids of their own, so that the
    error summary's links and the labels lead to this form's boxes, not the find form's."""

    user = staff_user_field(id="end-user")
    reason = TextAreaField(
        "Why are you ending them?",
        description="For the access log, for example: left the council, or laptop stolen",
        widget=GovTextArea(),
        validators=[
            InputRequired(message="Say why you are ending their sessions"),
            Length(max=500, message="Keep the reason to 500 characters"),
        ],
    )
    submit = SubmitField("End all their sessions", id="end-submit", widget=GovSubmitInput())


@page(
    bp,
    "/sessions",
    action=ACTION,
    summary="A member of staff's running sign-in sessions, to end them all (a leaver, a lost "
    "device), as `forewarn sessions list` shows them",
)
def sessions() -> Any:
    finding = "user" in request.args
    form = FindStaffForm(request.args if finding else None)
    live = None
    if finding and form.validate():
        user_id = form.user.data.strip()
        live = read(lambda session, _runtime: staff_sessions.live_sessions(session, user_id))
    end = EndSessionsForm(data={"user": form.user.data} if live else None)
    return render(
        "console/sessions.html",
        status=422 if form.errors else 200,
        form=form,
        find=form,
        end=end,
        live=live,
        title="Sign-in sessions",
    )


@page(
    bp,
    "/sessions/end",
    methods=["POST"],
    action=ACTION,
    summary="End every sign-in session of a member of staff: their cookies and access tokens "
    "stop working everywhere at once, as `forewarn sessions end` (audited)",
)
def end_sessions() -> Any:
    end = EndSessionsForm()
    if not end.validate_on_submit():
        return render(
            "console/sessions.html",
            status=422,
            form=end,
            find=FindStaffForm(data={"user": end.user.data}),
            end=end,
            live=None,
            title="Sign-in sessions",
        )
    user_id, reason = end.user.data.strip(), end.reason.data.strip()
    count = call(
        ACTION, lambda ctx: staff_sessions.end_all_for_user(ctx.session, ctx.actor, user_id, reason)
    )
    sessions_word = "session" if count == 1 else "sessions"
    flash(f"{count} {sessions_word} of {user_id} ended. They must sign in again.", "success")
    return redirect(url_for(".sessions", user=user_id), code=303)
