"""The whole policy through the console only, in real Chromium, by keyboard alone.

One browser; each member of staff takes over with the demo persona switcher: an agent
records the incident, a manager triages it, a case officer proposes the flag, the panel's
three roles approve it as three people, the letter is previewed and sent, an appeal is
lodged, assigned and decided by an uninvolved director, the review is assigned and
recorded, and the flag withdrawn. The privacy side then finds each of those acts in the
access log and exports the person's data, and IT requeues the status the CRM refused.
axe-core and the 320px reflow check run on every page visited and every error state.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from tests.connectors.fakes.webhook import ROTATED_SECRET, FakeWebhookReceiver
from tests.console import test_console_browser as shared
from tests.console import test_oversight_browser as oversight
from tests.console.browser_steps import (
    banner_says,
    card_action,
    choose,
    error_summary_shown,
    find_subject,
    press,
    switch_to,
    type_date,
    type_into,
)
from tests.console.test_console_browser import accessible, expect, submit, tab_to
from tests.sync.test_sync import worker

pytestmark = oversight.pytestmark

# The console suite's browser and once-on-SQLite rule; the oversight suite's sidecar with a
# webhook connector to a fake CRM.
browser = shared.browser
_once_on_sqlite = shared._once_on_sqlite
receiver = oversight.receiver
live = oversight.live
console = oversight.console

REF = "CRM-7001"
NARRATIVE = "Raised a walking stick at the officer at the housing counter."


@pytest.fixture
def page(browser: Any, console: str) -> Any:
    context = browser.new_context(viewport={"width": 1024, "height": 768})
    tab = context.new_page()
    tab.goto(console + "/")
    yield tab
    context.close()


def record_the_incident(page: Any) -> None:
    switch_to(page, "demo.agent")
    press(page, "a[href='/console/incidents/new']")
    choose(page, "input#kind")
    type_into(page, "input#ref", REF)
    type_date(page, "occurred_on", date.today() - timedelta(days=2))
    type_into(page, "input#occurred_time", "10:30")
    choose(page, "input#channel")
    choose(page, "input#behaviour_types")
    type_into(page, "textarea#narrative", NARRATIVE)
    choose(page, "input#warning_given")
    press(page, "button.govuk-button")
    banner_says(page, f"Incident recorded for customer {REF}")
    accessible(page, "policy-incident-recorded")


def triage_it(page: Any) -> None:
    switch_to(page, "demo.sm")
    expect(page.get_by_role("link", name="Incidents to triage: 1")).to_be_visible()
    press(page, "a[href='/console/incidents/triage']")
    press(page, ".console-queue a")
    expect(page.get_by_text(NARRATIVE)).to_be_visible()
    type_into(page, "input#channel", "in person at the housing counter")
    type_into(page, "textarea#circumstances", "Told the repair was refused")
    choose(page, "input#known_to_council")
    type_into(page, "input#support_needs", "none known")
    choose(page, "input[name='outcome'][value='refer_to_case_review']")
    press(page, "button.govuk-button")
    banner_says(page, "Your triage decision is recorded")


def propose_the_flag(page: Any) -> None:
    switch_to(page, "demo.officer")
    find_subject(page, REF)
    accessible(page, "policy-subject-before")
    press(page, f"a[href='/console/subjects/customer/{REF}/propose']")
    expect(page.get_by_role("heading", name="Propose a flag")).to_be_visible()
    accessible(page, "policy-propose")
    press(page, "button.govuk-button")
    error_summary_shown(page, "Choose the flag's level", "Say why a flag is needed")
    accessible(page, "policy-propose-error")
    choose(page, "input[name='level'][value='red']")
    choose(page, "input[name='categories'][value='physical_violence']")
    choose(page, "input[name='restrictions'][value='visits_in_pairs']")
    type_into(page, "textarea#handling", "Two officers at every visit.")
    type_into(page, "textarea#reason", "Raised a walking stick at an officer.")
    type_into(page, "textarea#control_measures", "Meet only at the civic centre, in pairs.")
    type_into(page, "textarea#reasonable_adjustments", "None known.")
    type_date(page, "warning_given_on", date.today() - timedelta(days=2))
    type_into(page, "input#responsible_manager", "demo.sm")
    type_into(page, "input#review_months", "12")
    choose(page, "input[name='incident_ids']")
    press(page, "button.govuk-button")
    banner_says(page, "The flag is proposed")


def vote(page: Any, persona: str, *, with_error_state: bool = False) -> None:
    switch_to(page, persona)
    press(page, "a[href='/console/panel']")
    accessible(page, f"policy-panel-queue-{persona}")
    press(page, ".console-queue a")
    expect(page.get_by_role("heading", name="Case review: red flag")).to_be_visible()
    if with_error_state:
        accessible(page, "policy-panel-vote")
        press(page, "form[action$='/panel'] button.govuk-button")
        error_summary_shown(page, "Choose to approve or reject")
        accessible(page, "policy-panel-vote-error")
    choose(page, "input[name='role']")
    choose(page, "input[name='decision'][value='approve']")
    type_into(page, "input#severity", "high")
    type_into(page, "input#frequency", "a single serious incident")
    type_into(page, "textarea#proportionality", "The least restriction that keeps staff safe.")
    type_into(page, "textarea#reasonable_adjustments", "None known.")
    press(page, "form[action$='/panel'] button.govuk-button")
    banner_says(page, "is recorded")
    accessible(page, f"policy-panel-voted-{persona}")


def send_the_letter(page: Any) -> None:
    switch_to(page, "demo.csm")
    press(page, "a[href='/console/flags/awaiting-notice']")
    press(page, ".console-queue a")
    type_into(page, "input#recipient_name", "Mr T Example")
    type_into(page, "textarea#recipient_address", "14 Station Road\nDemo Town\nDT2 4QQ")
    press(page, "button[name='preview']")
    expect(page.get_by_role("region", name="Preview of the decision letter")).to_contain_text(
        "Mr T Example"
    )
    accessible(page, "policy-letter-preview")
    press(page, "button[name='submit']")
    banner_says(page, "recorded as sent")
    accessible(page, "policy-letter-sent")


def appeal(page: Any) -> None:
    switch_to(page, "demo.officer")
    press(page, "a[href='/console/appeals/windows']")
    press(page, ".console-queue a")
    type_date(page, "received_on", date.today())
    type_into(page, "textarea#grounds", "The incident has been misreported.")
    press(page, "button.govuk-button")
    banner_says(page, "The appeal is recorded")

    switch_to(page, "demo.csm")
    press(page, "a[href='/console/appeals']")
    press(page, "a[href$='/handler']")
    choose(page, "input[name='manager'][value='demo.sm']")
    press(page, "button.govuk-button")
    banner_says(page, "now handles the appeal")

    switch_to(page, "demo.director")
    press(page, "a[href='/console/appeals']")
    accessible(page, "policy-appeals-open")
    press(page, "a[href$='/decision']")
    decide(page, "upheld", "textarea#reasons", "The panel's assessment stands.")
    expect(page.get_by_role("heading", name="Letter 2: appeal outcome")).to_be_visible()
    accessible(page, "policy-appeal-outcome-letter")


def decide(page: Any, outcome: str, box: str, reasons: str) -> None:
    """An appeal's or a review's outcome and its reasons, recorded."""
    choose(page, f"input[name='outcome'][value='{outcome}']")
    type_into(page, box, reasons)
    press(page, "button.govuk-button")


def review(page: Any) -> None:
    switch_to(page, "demo.csm")
    find_subject(page, REF)
    card_action(page, "/reviewers")
    expect(page.get_by_role("heading", name="Assign the review")).to_be_visible()
    accessible(page, "policy-review-assign")
    press(page, "button.govuk-button")
    error_summary_shown(page, "Choose at least one reviewer")
    accessible(page, "policy-review-assign-error")
    choose(page, "input[name='reviewers'][value='demo.sm']")
    press(page, "button.govuk-button")
    banner_says(page, "The next review is assigned to Sam Patel")

    switch_to(page, "demo.sm")
    find_subject(page, REF)
    card_action(page, "/review")
    decide(page, "continue", "textarea#notes", "No further incident since the appeal.")
    expect(page.get_by_role("heading", name="Letter 3: review outcome")).to_be_visible()
    accessible(page, "policy-review-outcome-letter")


def withdraw(page: Any) -> None:
    switch_to(page, "demo.csm")
    find_subject(page, REF)
    card_action(page, "/withdraw")
    type_into(page, "textarea#reason", "Raised against the wrong customer record.")
    press(page, "button.govuk-button")
    banner_says(page, "withdrawn")
    accessible(page, "policy-withdrawn")


# Each act of the walk as the access log names it, who did it, and how many times.
ACTS = (
    ("incident.create", "demo.agent", 1),
    ("incident.triage", "demo.sm", 1),
    ("flag.proposed", "demo.officer", 1),
    ("flag.panel_approve", "demo.csm", 3),
    ("letter.read", "demo.csm", 1),
    ("flag.notice_letter", "demo.csm", 1),
    ("flag.appeal_lodged", "demo.officer", 1),
    ("flag.appeal_assigned", "demo.csm", 1),
    ("flag.appeal_decided", "demo.director", 1),
    ("flag.review_assigned", "demo.csm", 1),
    ("flag.reviewed", "demo.sm", 1),
    ("flag.withdrawn", "demo.csm", 1),
)


def find_each_act_in_the_access_log(page: Any) -> None:
    switch_to(page, "demo.privacy")
    press(page, "a[href='/console/access-log']")
    tab_to(page, "select#kind")
    page.keyboard.press("ArrowDown")
    type_into(page, "input#ref", REF)
    for n, (action, actor, at_least) in enumerate(ACTS):
        type_into(page, "input#action", action)
        submit(page)
        rows = page.locator("table.govuk-table tbody tr")
        expect(rows.first).to_contain_text(f"Customer {REF}")
        assert rows.count() >= at_least, f"{action}: {rows.count()} entries"
        if at_least == 1:
            expect(rows.filter(has_text=f"({actor})")).not_to_have_count(0)
        if n == 0:
            accessible(page, "policy-access-log")
    # The panel's three approvals are three people.
    type_into(page, "input#action", "flag.panel_approve")
    submit(page)
    for member in ("demo.csm", "demo.sm", "demo.hs"):
        expect(page.locator("table.govuk-table tbody tr", has_text=f"({member})")).to_have_count(1)


def export_the_subject_access_request(page: Any) -> None:
    switch_to(page, "demo.privacy")
    press(page, "a[href='/console/subject-access']")
    type_into(page, "input#ref", REF)
    type_into(page, "input#request_ref", "SAR-2026-71")
    submit(page)
    expect(page.get_by_role("heading", name=f"Customer {REF}")).to_be_visible()
    expect(page.get_by_text(NARRATIVE).first).to_be_visible()
    accessible(page, "policy-sar-export")
    with page.expect_download() as download:
        tab_to(page, "a[href*='subject-access.json']")
        page.keyboard.press("Enter")
    assert download.value.suggested_filename == f"subject-access-customer-{REF}.json"


def requeue_the_dead_letter(page: Any, live: Any, receiver: FakeWebhookReceiver) -> None:
    switch_to(page, "demo.admin")
    expect(page.get_by_role("link", name="Dead letters: 1")).to_be_visible()
    press(page, ".console-queues a")
    expect(page.get_by_role("cell", name=f"Customer {REF}")).to_be_visible()
    accessible(page, "policy-dead-letter")
    press(page, "form[action$='/requeue'] button")
    banner_says(page, "will be sent again on the next pass")
    accessible(page, "policy-requeued")


def test_the_whole_policy_through_the_console_by_keyboard(
    page: Any, live: Any, receiver: FakeWebhookReceiver
) -> None:
    receiver.seed("customer", REF)
    record_the_incident(page)
    triage_it(page)
    propose_the_flag(page)
    vote(page, "demo.csm", with_error_state=True)
    vote(page, "demo.sm")
    vote(page, "demo.hs")
    send_the_letter(page)
    appeal(page)
    review(page)
    # The CRM stops taking statuses (its secret rotated unannounced): the withdrawal's
    # status is refused and becomes a dead letter.
    secret, receiver.secret = receiver.secret, ROTATED_SECRET
    withdraw(page)
    worker(live).run_once()
    receiver.secret = secret

    find_each_act_in_the_access_log(page)
    export_the_subject_access_request(page)
    requeue_the_dead_letter(page, live, receiver)
    assert receiver.status_of("customer", REF) is None
    worker(live).run_once()
    # Requeued, the CRM takes the status: the flag was withdrawn, so no flag.
    assert receiver.status_of("customer", REF)["level"] == "none"
