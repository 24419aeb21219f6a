"""Telling the person in the console: the letter previewed, sent, printed and downloaded, and
the withheld-notice exception given by the Head of Legal and a Service Director themselves."""

from __future__ import annotations

from datetime import date

from sidecar.register.case_models import Letter, Notice, WithholdingGuidance
from tests.console.conftest import (
    audit_reasons,
    count,
    csrf_token,
    error_summary,
    post_form,
    text,
)

ADDRESS = "14 Station Road\nDemo Town\nDT2 4QQ"
RECIPIENT = {"recipient_name": "Mr T Example", "recipient_address": ADDRESS}
GUIDANCE = {
    "legal_guidance_ref": "LG-2026-014",
    "reason": "Telling him would put the reporting officer at risk.",
}


def test_a_manager_previews_the_letter_then_sends_it(app, cases, staff) -> None:
    flag_id = cases.active()
    csm = staff("customer_support_manager", user="u.csm2", name="Cleo Manager")
    assert "Flags awaiting a notice: 1" in text(csm.get("/"))
    path = f"/console/flags/{flag_id}/notice"
    preview = post_form(csm, path, RECIPIENT | {"preview": "Preview the letter"})
    assert preview.status_code == 200
    shown = text(preview)
    assert "Struck an officer with a walking stick at reception." in shown
    assert "Mr T Example" in shown and "Cleo Manager" in shown
    today = date.today()
    assert f"Date: {today.day} {today:%B %Y}" in shown
    assert "Send the letter" in shown
    assert count(app, Notice) == count(app, Letter) == 0
    assert ("u.csm2", "allowed", "decision letter preview") in audit_reasons(app, "letter.read")

    sent = csm.post(
        path,
        data={
            "csrf_token": csrf_token(preview.get_data(as_text=True)),
            **RECIPIENT,
            "submit": "Send the letter",
        },
    )
    assert sent.status_code == 302
    assert sent.headers["Location"] == f"/console/flags/{flag_id}/letters/1"
    letter = text(csm.get(sent.headers["Location"]))
    assert "The decision letter is recorded as sent" in letter
    assert "Mr T Example" in letter and "Our reference: FW-" in letter
    assert count(app, Notice, Notice.method == "letter") == 1
    assert "Flags awaiting a notice: 0" in text(csm.get("/"))
    assert "The person's notice was given already" in text(csm.get(path))


def test_a_letter_without_a_name_or_address_is_refused_and_nothing_is_sent(
    app, cases, staff
) -> None:
    flag_id = cases.active()
    reply = post_form(
        staff("customer_support_manager"),
        f"/console/flags/{flag_id}/notice",
        {"recipient_name": "", "recipient_address": "Kept as typed", "submit": "Send"},
    )
    assert reply.status_code == 422
    assert error_summary(reply) == ["Enter the name of the person the letter is to"]
    assert "Kept as typed" in reply.get_data(as_text=True)
    assert count(app, Notice) == count(app, Letter) == 0


def test_the_letter_is_read_printed_and_downloaded_as_the_api_audits_it(
    app, cases, client, staff
) -> None:
    flag_id = cases.notified()
    # The panel's Customer Support Manager: a part in the case opens its letters.
    csm = staff("customer_support_manager", user="u.csm")
    base = f"/console/flags/{flag_id}/letters/1"
    page = csm.get(base)
    assert page.status_code == 200
    assert "Struck an officer with a walking stick" in text(page)
    printed = csm.get(base + "/print")
    assert printed.status_code == 200
    assert printed.headers["Cache-Control"] == "no-store"
    assert "script-src" not in printed.headers["Content-Security-Policy"]
    assert printed.get_data(as_text=True).startswith("<!doctype html>")
    pdf = csm.get(base + "/pdf")
    assert pdf.status_code == 200
    assert pdf.mimetype == "application/pdf"
    assert pdf.data.startswith(b"%PDF-")
    reference = cases.read(flag_id)["reference"]
    assert f'filename="{reference}-letter-1.pdf"' in pdf.headers["Content-Disposition"]
    client.get(
        f"/api/v1/flags/{flag_id}/letters/1",
        headers=cases.staff("customer_support_manager", user="u.csm"),
    )
    reads = [
        (who, outcome, reason.split(" (")[0])
        for who, outcome, reason in audit_reasons(app, "letter.read")
        if who == "u.csm"
    ]
    assert reads == [
        ("u.csm", "allowed", "letter 1"),
        ("u.csm", "allowed", "letter 1"),
        ("u.csm", "allowed", "letter 1 as PDF"),
        ("u.csm", "allowed", "letter 1"),
    ]


def test_an_uninvolved_reader_cannot_open_a_letter_and_the_refusal_is_audited(
    app, cases, staff
) -> None:
    flag_id = cases.notified()
    legal = staff("legal", user="u.legal")
    for suffix in ("", "/print", "/pdf"):
        reply = legal.get(f"/console/flags/{flag_id}/letters/1{suffix}")
        assert reply.status_code == 403
        assert "Struck an officer" not in reply.get_data(as_text=True)
    assert [r[1] for r in audit_reasons(app, "letter.read")] == ["denied"] * 3


def test_legal_guidance_and_a_directors_own_permission_withhold_the_letter(
    app, cases, staff
) -> None:
    flag_id = cases.active()
    legal = staff("legal", user="u.legal", name="Lee Legal")
    assert "Flags awaiting a notice: 1" in text(legal.get("/"))
    guidance_path = f"/console/flags/{flag_id}/notice/guidance"
    reply = post_form(legal, guidance_path, GUIDANCE)
    assert reply.status_code == 302
    assert "A Service Director must now give permission" in text(legal.get(guidance_path))
    assert count(app, Notice) == 0

    director = staff("service_director", user="u.dir9", name="Dana Director")
    assert "Withheld letters awaiting your permission: 1" in text(director.get("/"))
    permission_path = f"/console/flags/{flag_id}/notice/permission"
    page = director.get(permission_path)
    assert "LG-2026-014" in text(page)
    assert GUIDANCE["reason"] in text(page)
    assert ("u.dir9", "allowed", "withholding guidance LG-2026-014 with its reason") in (
        audit_reasons(app, "flag.read")
    )
    granted = post_form(director, permission_path, {})
    assert granted.status_code == 302
    assert "the decision letter is withheld" in text(director.get(permission_path))
    with app.extensions["forewarn"].database.transaction() as session:
        notice = session.query(Notice).one()
        assert (notice.method, notice.legal_guidance_ref) == ("withheld", "LG-2026-014")
        assert notice.director_permission_by == notice.issued_by == "u.dir9"
    assert count(app, Letter) == 0
    assert "Withheld letters awaiting your permission: 0" in text(director.get("/"))


def test_guidance_without_its_reason_is_refused_and_nothing_is_recorded(app, cases, staff) -> None:
    flag_id = cases.active()
    reply = post_form(
        staff("legal", user="u.legal"),
        f"/console/flags/{flag_id}/notice/guidance",
        {"legal_guidance_ref": "LG-1", "reason": ""},
    )
    assert reply.status_code == 422
    assert error_summary(reply) == ["Say why telling the person would put someone at risk"]
    assert 'value="LG-1"' in reply.get_data(as_text=True)
    assert count(app, WithholdingGuidance) == 0


def test_a_director_has_nothing_to_permit_without_legal_guidance(app, cases, staff) -> None:
    flag_id = cases.active()
    director = staff("service_director", user="u.dir9")
    path = f"/console/flags/{flag_id}/notice/permission"
    assert "has recorded no guidance" in text(director.get(path))
    page = director.get("/console/flags/awaiting-permission")
    assert "No letter waits for your permission" in text(page)
    assert count(app, Notice) == 0


REFUSAL = {"refusal_reason": "The risk is managed by the visits in pairs; he should be told."}


def test_a_director_refuses_permission_with_a_reason_shown_on_the_flag(app, cases, staff) -> None:
    flag_id = cases.active()
    post_form(staff("legal", user="u.legal"), f"/console/flags/{flag_id}/notice/guidance", GUIDANCE)
    director = staff("service_director", user="u.dir9", name="Dana Director")
    permission_path = f"/console/flags/{flag_id}/notice/permission"
    reply = post_form(
        director, f"/console/flags/{flag_id}/notice/refusal", REFUSAL, token_from=permission_path
    )
    assert reply.status_code == 302
    page = text(director.get(permission_path))
    assert "Your refusal is recorded: the decision letter must be sent" in page
    assert "Permission refused" in page and REFUSAL["refusal_reason"] in page
    assert "Give my permission" not in page
    assert GUIDANCE["reason"] not in page
    assert "Withheld letters awaiting your permission: 0" in text(director.get("/"))

    subject = text(
        director.get(f"/console/subjects/customer/{cases.read(flag_id)['subject']['ref']}")
    )
    assert "Dana Director refused permission to withhold the decision letter" in subject
    assert REFUSAL["refusal_reason"] in subject
    [(actor, outcome, reason)] = audit_reasons(app, "flag.withholding_refused")
    assert (actor, outcome) == ("u.dir9", "allowed")
    assert "legal guidance LG-2026-014" in reason

    # Refused, the letter is not withheld: permission is refused too, and the letter is sent.
    again = post_form(director, permission_path, {})
    assert again.status_code == 422
    assert "was refused by Dana Director" in " ".join(error_summary(again))
    assert count(app, Notice) == 0
    manager = staff("customer_support_manager", user="u.csm")
    sent = post_form(manager, f"/console/flags/{flag_id}/notice", RECIPIENT | {"submit": "Send"})
    assert sent.status_code == 302
    with app.extensions["forewarn"].database.transaction() as session:
        assert session.query(Notice).one().method == "letter"


def test_a_refusal_without_its_reason_is_refused_and_changes_nothing(app, cases, staff) -> None:
    flag_id = cases.active()
    post_form(staff("legal", user="u.legal"), f"/console/flags/{flag_id}/notice/guidance", GUIDANCE)
    director = staff("service_director", user="u.dir9")
    reply = post_form(
        director,
        f"/console/flags/{flag_id}/notice/refusal",
        {"refusal_reason": "   "},
        token_from=f"/console/flags/{flag_id}/notice/permission",
    )
    assert reply.status_code == 422
    assert error_summary(reply) == ["Say why you refuse permission to withhold the letter"]
    assert "Give my permission" in text(reply)
    assert audit_reasons(app, "flag.withholding_refused") == []
    assert "Withheld letters awaiting your permission: 1" in text(director.get("/"))


def test_new_guidance_after_a_refusal_waits_for_a_director_again(app, cases, staff) -> None:
    flag_id = cases.active()
    legal = staff("legal", user="u.legal")
    post_form(legal, f"/console/flags/{flag_id}/notice/guidance", GUIDANCE)
    director = staff("service_director", user="u.dir9")
    permission_path = f"/console/flags/{flag_id}/notice/permission"
    post_form(
        director, f"/console/flags/{flag_id}/notice/refusal", REFUSAL, token_from=permission_path
    )
    post_form(
        legal,
        f"/console/flags/{flag_id}/notice/guidance",
        GUIDANCE | {"legal_guidance_ref": "LG-2026-015"},
    )
    assert "Withheld letters awaiting your permission: 1" in text(director.get("/"))
    assert post_form(director, permission_path, {}).status_code == 302
    with app.extensions["forewarn"].database.transaction() as session:
        assert session.query(Notice).one().legal_guidance_ref == "LG-2026-015"
