"""Telling the person: the decision letter previewed and sent, each letter read, printed or
downloaded as PDF, and the exception that withholds the letter on legal guidance."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Response, flash, redirect, url_for
from markupsafe import Markup
from sqlalchemy.orm import Session

from sidecar.audit import writer as audit
from sidecar.console.calls import call, read, show_refusal
from sidecar.console.case_forms import GuidanceForm, NoticeForm, PermissionForm, RefusalForm
from sidecar.console.formatting import uk_date
from sidecar.console.page import may, page, render
from sidecar.console.queues import (
    awaiting_notice,
    awaiting_permission,
    flag_title,
    page_of,
    requested_page,
)
from sidecar.console.reads import flag_case
from sidecar.lookup import letters
from sidecar.register import flags, notices
from sidecar.register.rules import Conflict, Invalid
from sidecar.runtime import Runtime, current_runtime
from sidecar.storage.database import utcnow

bp = Blueprint("notices", __name__, url_prefix="/console/flags")

BODY = re.compile(r"<body[^>]*>(.*)</body>", re.S | re.I)


def letter_markup(document: str) -> Markup:
    """The body of a rendered letter, to show inside a console page.

    Letters are rendered by the register's own autoescaping templates, so their markup is
    as safe inside the page as it is served on its own.
    """
    found = BODY.search(document)
    return Markup(found.group(1) if found else document)  # noqa: S704


def _case(flag_id: str) -> dict[str, Any]:
    """The flag's record without confidential fields, audited as the API's read of it."""
    flag, event = read(lambda session, runtime: flag_case(session, runtime, flag_id, now=utcnow()))
    audit.record(event)
    return flag


def _guidance(session: Session, runtime: Runtime, flag_id: str, *, with_reason: bool) -> Any:
    guidance = notices.guidance_of(session, flags.load(session, flag_id))
    if guidance is None:
        return None
    shown = {
        "legal_guidance_ref": guidance.legal_guidance_ref,
        "recorded_by_name": guidance.recorded_by_name or guidance.recorded_by,
        "recorded_at": guidance.recorded_at,
        "refused_by_name": guidance.refused_by_name or guidance.refused_by,
        "refused_at": guidance.refused_at,
        "refusal_reason": guidance.refusal_reason,
    }
    if with_reason and guidance.refused_at is None:
        shown["reason"] = guidance.unseal(runtime.keyring, "reason")
    return shown


def _flag_rows(query: Any, endpoint: str, text: str) -> Any:
    number = requested_page()

    def rows(session: Session, _runtime: Runtime) -> Any:
        shown = page_of(session, query, number)
        shown.rows = [
            {
                "href": url_for(endpoint, flag_id=flag.id),
                "title": flag_title(flag),
                "text": text.format(activated=uk_date(flag.activated_at)),
            }
            for flag in shown.rows
        ]
        return shown

    return read(rows)


@page(
    bp,
    "/awaiting-notice",
    action="flag.read",
    summary="Active flags whose person has not been told yet, the longest waiting first",
)
def awaiting_notice_queue() -> Any:
    return render(
        "console/flag_queue.html",
        queue=_flag_rows(
            awaiting_notice(),
            ".notice" if may("notice.issue") else ".guidance",
            "Active since {activated}.",
        ),
        title="Flags awaiting a notice",
        intro="The person must be told of an active flag by letter, unless legal guidance and "
        f"a Service Director's permission withhold it, within "
        f"{current_runtime().settings.policy.notice_due_days} days.",
        empty="Every active flag's notice has been given.",
    )


@page(
    bp,
    "/awaiting-permission",
    action="notice.permit_withheld",
    summary="Flags whose letter legal guidance advises withholding, awaiting a Service Director",
)
def awaiting_permission_queue() -> Any:
    return render(
        "console/flag_queue.html",
        queue=_flag_rows(awaiting_permission(), ".permission", "Active since {activated}."),
        title="Withheld letters awaiting your permission",
        intro="The Head of Legal advises withholding each of these decision letters.",
        empty="No letter waits for your permission.",
    )


@page(
    bp,
    "/<flag_id>/notice",
    methods=["GET", "POST"],
    action="notice.issue",
    confidential=True,
    summary="Preview the decision letter to the person and send it (as POST "
    "/api/v1/flags/{id}/notice with method letter); a preview is audited as a letter read",
)
def notice(flag_id: str) -> Any:
    form = NoticeForm()
    preview = None
    if form.validate_on_submit():
        name = form.recipient_name.data.strip()
        address = form.recipient_address.data.strip()
        try:
            if form.preview.data:
                preview = call(
                    "notice.issue",
                    lambda ctx: notices.preview_decision_letter(
                        ctx, flag_id, recipient_name=name, recipient_address=address
                    ),
                    flag_id=flag_id,
                )
            else:
                n = call(
                    "notice.issue",
                    lambda ctx: (
                        notices.issue_notice(
                            ctx, flag_id, "letter", recipient_name=name, recipient_address=address
                        )[1].n
                    ),
                    flag_id=flag_id,
                )
                flash(
                    "The decision letter is recorded as sent. Print it or download it as PDF "
                    "to post.",
                    "success",
                )
                return redirect(url_for(".letter", flag_id=flag_id, n=n))
        except (Invalid, Conflict) as exc:
            show_refusal(form, exc, {"name": "recipient_name"}, "recipient_name")
    flag = _case(flag_id)
    if preview is not None:
        audit.record(
            audit.AuditEvent(
                action=letters.LETTER_READ,
                flag_id=flag_id,
                subject_kind=flag["subject"]["kind"],
                subject_ref=flag["subject"]["ref"],
                outcome_reason="decision letter preview",
            )
        )
    guidance = read(lambda s, r: _guidance(s, r, flag_id, with_reason=False))
    return render(
        "console/notice.html",
        status=422 if form.errors else 200,
        form=form,
        flag=flag,
        guidance=guidance,
        preview=letter_markup(preview) if preview else None,
        title="Tell the person",
    )


def _opened(flag_id: str, n: int, how: str = "") -> tuple[letters.OpenedLetter, str]:
    opened = call(letters.LETTER_READ, lambda ctx: letters.open_letter(ctx, flag_id, n))
    return opened, letters.disclose(opened, how)


@page(
    bp,
    "/<flag_id>/letters/<int:n>",
    action="flag.read",
    confidential=True,
    summary="One letter about a flag, with print and PDF; opened and audited as GET "
    "/api/v1/flags/{id}/letters/{n}",
)
def letter(flag_id: str, n: int) -> Any:
    opened, body = _opened(flag_id, n)
    return render(
        "console/letter.html",
        letter=opened,
        body=letter_markup(body),
        title=f"Letter {n}",
    )


@page(
    bp,
    "/<flag_id>/letters/<int:n>/print",
    action="flag.read",
    confidential=True,
    summary="One letter on its own, as it is posted, for printing; audited as GET "
    "/api/v1/flags/{id}/letters/{n}",
)
def print_letter(flag_id: str, n: int) -> Any:
    _opened_letter, body = _opened(flag_id, n)
    response = Response(body, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    # The letter carries its own print styles and nothing else: no script may run in it.
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )
    return response


@page(
    bp,
    "/<flag_id>/letters/<int:n>/pdf",
    action="flag.read",
    confidential=True,
    summary="One letter as a PDF to post, rendered with WeasyPrint; audited as a letter read",
)
def letter_pdf(flag_id: str, n: int) -> Any:
    from weasyprint import HTML  # loaded on first use: it brings Pango with it

    opened, body = _opened(flag_id, n, " as PDF")
    response = Response(HTML(string=body).write_pdf(), mimetype="application/pdf")
    response.headers["Cache-Control"] = "no-store"
    name = f"{opened.reference or opened.flag_id}-letter-{n}.pdf"
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@page(
    bp,
    "/<flag_id>/notice/guidance",
    methods=["GET", "POST"],
    action="notice.record_guidance",
    summary="The Head of Legal records the guidance to withhold the decision letter; it "
    "waits for a Service Director's permission",
)
def guidance(flag_id: str) -> Any:
    form = GuidanceForm()
    if form.validate_on_submit():
        try:
            call(
                "notice.record_guidance",
                lambda ctx: (
                    notices.record_guidance(
                        ctx, flag_id, form.legal_guidance_ref.data, form.reason.data
                    ).id
                ),
                flag_id=flag_id,
            )
        except (Invalid, Conflict) as exc:
            fields = {"legal_guidance_ref": "legal_guidance_ref", "reason": "reason"}
            show_refusal(form, exc, fields, "legal_guidance_ref")
        else:
            flash(
                "Your guidance is recorded. A Service Director must now give permission "
                "before the letter is withheld.",
                "success",
            )
            return redirect(url_for(".guidance", flag_id=flag_id))
    flag = _case(flag_id)
    recorded = read(lambda s, r: _guidance(s, r, flag_id, with_reason=False))
    return render(
        "console/withhold_guidance.html",
        status=422 if form.errors else 200,
        form=form,
        flag=flag,
        guidance=recorded,
        title="Guidance to withhold the letter",
    )


@page(
    bp,
    "/<flag_id>/notice/permission",
    methods=["GET", "POST"],
    action="notice.permit_withheld",
    confidential=True,
    summary="A Service Director, signed in themselves, permits withholding the decision letter "
    "on the recorded legal guidance (records the notice as POST /api/v1/flags/{id}/notice "
    "with method withheld); the guidance's reason is audited when shown",
)
def permission(flag_id: str) -> Any:
    form = PermissionForm()
    if form.validate_on_submit():
        try:
            call(
                "notice.permit_withheld",
                lambda ctx: notices.permit_withholding(ctx, flag_id).id,
                flag_id=flag_id,
            )
        except (Invalid, Conflict) as exc:
            show_refusal(form, exc, {}, "submit")
        else:
            flash("Your permission is recorded: the decision letter is withheld.", "success")
            return redirect(url_for(".permission", flag_id=flag_id))
    return _permission_page(flag_id, form, form, RefusalForm(formdata=None))


@page(
    bp,
    "/<flag_id>/notice/refusal",
    methods=["POST"],
    action="notice.permit_withheld",
    summary="A Service Director, signed in themselves, refuses permission to withhold the "
    "decision letter, with a reason shown on the flag's history (audited); the letter must "
    "then be sent, unless the Head of Legal records new guidance",
)
def refuse_permission(flag_id: str) -> Any:
    refuse = RefusalForm()
    if refuse.validate_on_submit():
        try:
            call(
                "notice.permit_withheld",
                lambda ctx: notices.refuse_withholding(ctx, flag_id, refuse.refusal_reason.data).id,
                flag_id=flag_id,
            )
        except (Invalid, Conflict) as exc:
            show_refusal(refuse, exc, {"reason": "refusal_reason"}, "refusal_reason")
        else:
            flash(
                "Your refusal is recorded: the decision letter must be sent to the person.",
                "success",
            )
            return redirect(url_for(".permission", flag_id=flag_id))
    return _permission_page(flag_id, refuse, PermissionForm(formdata=None), refuse)


def _permission_page(flag_id: str, sent: Any, permit: Any, refuse: Any) -> Any:
    """The director's page: the guidance with its reason (audited when shown), and the two
    forms, to permit or to refuse; `sent` is the one whose errors the summary lists."""
    flag = _case(flag_id)
    shown = read(lambda s, r: _guidance(s, r, flag_id, with_reason=flag["notice"] is None))
    if shown is not None and "reason" in shown:
        ref = shown["legal_guidance_ref"]
        audit.record(
            audit.AuditEvent(
                action="flag.read",
                flag_id=flag_id,
                subject_kind=flag["subject"]["kind"],
                subject_ref=flag["subject"]["ref"],
                outcome_reason=f"withholding guidance {ref} with its reason",
            )
        )
    return render(
        "console/withhold_permission.html",
        status=422 if sent.errors else 200,
        form=sent,
        permit=permit,
        refuse=refuse,
        flag=flag,
        guidance=shown,
        title="Permission to withhold the letter",
    )
