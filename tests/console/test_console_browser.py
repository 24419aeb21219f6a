"""The console in real Chromium: keyboard only, axe-core on every page and error state, 320px."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sidecar import create_app
from tests.lookup.browser_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    axe_violations,
    describe,
    served,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason="/usr/bin/chromium is absent: install Debian's chromium package (.ci/run does)",
    ),
]

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

from tests.console.browser_steps import error_summary_shown, submit, tab_to  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture(autouse=True)
def _once_on_sqlite(engine_kind: str) -> None:
    if engine_kind != "sqlite":
        pytest.skip("the browser suite runs once, on SQLite; the page tests cover PostgreSQL")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def console(make_settings: Callable[..., Any]) -> Iterator[str]:
    """The sidecar on a loopback port, as a demo instance served over http."""
    with served(create_app(make_settings())) as url:
        yield url


@pytest.fixture
def person(browser: Any, console: str) -> Iterator[Callable[[str], Any]]:
    """A browser of one's own (its own cookies), signed in as a demo persona by keyboard."""
    contexts = []

    def sign_in(persona: str) -> Any:
        context = browser.new_context(viewport={"width": 1024, "height": 768})
        contexts.append(context)
        return signed_in(context, console, persona)

    yield sign_in
    for context in contexts:
        context.close()


def signed_in(context: Any, console: str, persona: str) -> Any:
    """A new tab in `context`, signed in as the demo persona by keyboard."""
    page = context.new_page()
    page.goto(console + "/")
    expect(page.get_by_role("heading", name="Sign in to Forewarn")).to_be_visible()
    tab_to(page, f'input[value="{persona}"]')
    page.keyboard.press("Space")
    tab_to(page, "button.govuk-button")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Your work")).to_be_visible()
    return page


def accessible(page: Any, name: str) -> None:
    """axe-core finds nothing at WCAG 2.0-2.2 A and AA, and the page reflows at 320px."""
    violations = axe_violations(page)
    assert violations == [], f"{name}: {describe(violations)}"
    size = page.viewport_size
    page.set_viewport_size({"width": 320, "height": 640})
    wide = page.evaluate("() => document.documentElement.scrollWidth")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"console-{name}-320.png"), full_page=True)
    page.set_viewport_size(size)
    assert wide <= 320, f"{name}: the page is {wide}px wide at 320px (horizontal scrolling)"


def test_sign_in_and_its_error_state_are_accessible(browser: Any, console: str) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(console + "/console/sign-in")
    accessible(page, "sign-in")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".govuk-error-summary")).to_be_focused()
    expect(page).to_have_title("Error: Sign in \u2013 Forewarn \u2013 Demo Borough Council")
    accessible(page, "sign-in-error")
    page.goto(console + "/console/nowhere")
    context.close()


def test_an_agent_records_an_incident_by_keyboard_alone(person: Any) -> None:
    page = person("demo.agent")
    accessible(page, "home-agent")
    tab_to(page, "a[href='/console/incidents/new']")
    submit(page)
    expect(page.get_by_role("heading", name="Record an incident")).to_be_visible()
    accessible(page, "incident-new")
    tab_to(page, "button.govuk-button")
    submit(page)
    expect(page.locator(".govuk-error-summary")).to_be_focused()
    accessible(page, "incident-new-error")
    tab_to(page, "input#kind")
    page.keyboard.press("Space")
    tab_to(page, "input#ref")
    page.keyboard.type("CRM-3001")
    for box, value in (("day", "2"), ("month", "3"), ("year", "2025")):
        tab_to(page, f"input#occurred_on-{box}")
        page.keyboard.type(value)
    tab_to(page, "input#occurred_time")
    page.keyboard.type("09:15")
    tab_to(page, "input#channel")
    page.keyboard.press("Space")
    tab_to(page, "input#behaviour_types")
    page.keyboard.press("Space")
    tab_to(page, "textarea#narrative")
    page.keyboard.type("Shouted down the phone and would not let me speak.")
    tab_to(page, "input#warning_given")
    page.keyboard.press("Space")
    tab_to(page, "button.govuk-button")
    submit(page)
    expect(page.locator(".govuk-notification-banner--success")).to_contain_text(
        "Incident recorded for customer CRM-3001"
    )
    accessible(page, "home-after-incident")


def test_a_manager_finds_the_subject_and_triages_by_keyboard(person: Any) -> None:
    agent = person("demo.agent")
    agent.goto(agent.url.rstrip("/") + "/console/incidents/new")
    agent.check("input#kind")
    agent.fill("input#ref", "CRM-3002")
    agent.fill("input#occurred_on-day", "2")
    agent.fill("input#occurred_on-month", "3")
    agent.fill("input#occurred_on-year", "2025")
    agent.fill("input#occurred_time", "09:15")
    agent.check("input#channel")
    agent.check("input#behaviour_types")
    agent.fill("textarea#narrative", "Threatened to wait for the officer outside.")
    agent.check("input#warning_given")
    agent.get_by_role("button", name="Record the incident").click()

    manager = person("demo.sm")
    expect(manager.get_by_role("link", name="Incidents to triage: 1")).to_be_visible()
    tab_to(manager, "a[href='/console/incidents/triage']")
    submit(manager)
    accessible(manager, "triage-queue")
    tab_to(manager, ".console-queue a")
    submit(manager)
    expect(manager.get_by_text("Threatened to wait for the officer outside.")).to_be_visible()
    accessible(manager, "triage")
    tab_to(manager, "button.govuk-button")
    submit(manager)
    expect(manager.locator(".govuk-error-summary")).to_be_focused()
    accessible(manager, "triage-error")
    tab_to(manager, "input#channel")
    manager.keyboard.type("telephone")
    tab_to(manager, "textarea#circumstances")
    manager.keyboard.type("Repair refused")
    tab_to(manager, "input#known_to_council")
    manager.keyboard.press("Space")
    tab_to(manager, "input#support_needs")
    manager.keyboard.type("none known")
    tab_to(manager, "input#outcome")
    manager.keyboard.press("Space")
    tab_to(manager, "button.govuk-button")
    submit(manager)
    expect(manager.locator(".govuk-notification-banner--success")).to_contain_text(
        "Your triage decision is recorded"
    )
    accessible(manager, "triage-queue-empty")

    tab_to(manager, "a[href='/console/subjects']")
    submit(manager)
    accessible(manager, "search")
    tab_to(manager, "input#ref")
    manager.keyboard.type("CRM 3002")
    submit(manager)
    expect(manager.locator(".govuk-error-summary")).to_be_focused()
    accessible(manager, "search-error")
    tab_to(manager, "input#ref")
    manager.keyboard.press("Control+A")
    manager.keyboard.type("CRM-3002")
    submit(manager)
    expect(manager.get_by_role("heading", name="CRM-3002")).to_be_visible()
    expect(manager.get_by_text("Threatened to wait for the officer outside.")).to_be_visible()
    accessible(manager, "subject")


def test_refusals_and_missing_pages_are_accessible(person: Any, console: str) -> None:
    page = person("demo.agent")
    page.goto(console + "/console/incidents/triage")
    expect(page.get_by_role("heading", name="You cannot use this page")).to_be_visible()
    accessible(page, "forbidden")
    page.goto(console + "/console/subjects/customer/CRM-1")
    accessible(page, "forbidden-subject")
    manager = person("demo.sm")
    manager.goto(console + "/console/incidents/nope/triage")
    expect(manager.get_by_role("heading", name="Page not found")).to_be_visible()
    accessible(manager, "not-found")


ADDRESS = "14 Station Road\nDemo Town\nDT2 4QQ"


def test_a_manager_previews_and_sends_the_decision_letter(person: Any, cases: Any) -> None:
    cases.active()
    page = person("demo.csm")
    tab_to(page, "a[href='/console/flags/awaiting-notice']")
    submit(page)
    accessible(page, "awaiting-notice")
    tab_to(page, ".console-queue a")
    submit(page)
    expect(page.get_by_role("heading", name="Tell the person about the flag")).to_be_visible()
    accessible(page, "notice")
    tab_to(page, "button[name='preview']")
    submit(page)
    expect(page.locator(".govuk-error-summary")).to_be_focused()
    accessible(page, "notice-error")
    tab_to(page, "input#recipient_name")
    page.keyboard.type("Mr T Example")
    tab_to(page, "textarea#recipient_address")
    page.keyboard.type(ADDRESS)
    tab_to(page, "button[name='preview']")
    submit(page)
    expect(page.get_by_role("region", name="Preview of the decision letter")).to_contain_text(
        "Mr T Example"
    )
    accessible(page, "notice-preview")
    tab_to(page, "button[name='submit']")
    submit(page)
    expect(page.locator(".govuk-notification-banner--success")).to_contain_text("recorded as sent")
    accessible(page, "letter")
    tab_to(page, "a[href$='/print']")
    submit(page)
    expect(page.get_by_text("Dear Mr T Example,")).to_be_visible()
    accessible(page, "letter-print")


def test_legal_guidance_and_the_directors_permission_are_accessible(
    person: Any, cases: Any, console: str
) -> None:
    flag_id = cases.active()
    legal = person("demo.legal")
    legal.goto(f"{console}/console/flags/{flag_id}/notice/guidance")
    accessible(legal, "withhold-guidance")
    tab_to(legal, "button.govuk-button")
    submit(legal)
    expect(legal.locator(".govuk-error-summary")).to_be_focused()
    accessible(legal, "withhold-guidance-error")
    tab_to(legal, "input#legal_guidance_ref")
    legal.keyboard.type("LG-2026-014")
    tab_to(legal, "textarea#reason")
    legal.keyboard.type("Telling him would put the reporting officer at risk.")
    tab_to(legal, "button.govuk-button")
    submit(legal)
    expect(legal.locator(".govuk-notification-banner--success")).to_be_visible()

    director = person("demo.director")
    tab_to(director, "a[href='/console/flags/awaiting-permission']")
    submit(director)
    accessible(director, "awaiting-permission")
    tab_to(director, ".console-queue a")
    submit(director)
    expect(director.get_by_text("Telling him would put the reporting officer")).to_be_visible()
    accessible(director, "withhold-permission")
    # Refusing needs a reason: without one, nothing is refused and the page says why.
    tab_to(director, "form[action$='/notice/refusal'] button")
    submit(director)
    error_summary_shown(director, "Say why you refuse permission to withhold the letter")
    accessible(director, "withhold-refusal-error")
    tab_to(director, "form[action$='/notice/permission'] button")
    submit(director)
    expect(director.locator(".govuk-notification-banner--success")).to_contain_text(
        "the decision letter is withheld"
    )
    accessible(director, "withhold-permitted")


def test_an_appeal_is_lodged_assigned_and_decided_accessibly(
    person: Any, cases: Any, console: str
) -> None:
    from datetime import date

    flag_id = cases.notified()
    officer = person("demo.officer")
    tab_to(officer, "a[href='/console/appeals/windows']")
    submit(officer)
    accessible(officer, "appeal-windows")
    tab_to(officer, ".console-queue a")
    submit(officer)
    expect(officer.get_by_role("heading", name="Record an appeal")).to_be_visible()
    accessible(officer, "appeal-lodge")
    tab_to(officer, "button.govuk-button")
    submit(officer)
    expect(officer.locator(".govuk-error-summary")).to_be_focused()
    accessible(officer, "appeal-lodge-error")
    today = date.today()
    for box, value in (("day", today.day), ("month", today.month), ("year", today.year)):
        tab_to(officer, f"input#received_on-{box}")
        officer.keyboard.type(str(value))
    tab_to(officer, "textarea#grounds")
    officer.keyboard.type("The incident has been misreported.")
    tab_to(officer, "button.govuk-button")
    submit(officer)
    expect(officer.locator(".govuk-notification-banner--success")).to_be_visible()
    accessible(officer, "appeals-open")

    manager = person("demo.csm")
    manager.goto(console + "/console/appeals")
    tab_to(manager, "a[href$='/handler']")
    submit(manager)
    accessible(manager, "appeal-handler")
    tab_to(manager, "input#manager")
    manager.keyboard.press("Space")
    tab_to(manager, "button.govuk-button")
    submit(manager)
    expect(manager.locator(".govuk-notification-banner--success")).to_contain_text(
        "now handles the appeal"
    )

    director = person("demo.director")
    tab_to(director, "a[href='/console/appeals']")
    submit(director)
    tab_to(director, "a[href$='/decision']")
    submit(director)
    accessible(director, "appeal-decision")
    tab_to(director, "button.govuk-button")
    submit(director)
    expect(director.locator(".govuk-error-summary")).to_be_focused()
    accessible(director, "appeal-decision-error")
    tab_to(director, "input#outcome")
    director.keyboard.press("Space")
    tab_to(director, "textarea#reasons")
    director.keyboard.type("The panel's assessment stands.")
    tab_to(director, "button.govuk-button")
    submit(director)
    expect(director.get_by_role("heading", name="Letter 2: appeal outcome")).to_be_visible()
    accessible(director, "appeal-outcome-letter")
    assert flag_id in director.url


def overdue(app: Any, flag_id: str) -> None:
    """Put the flag's review a week in the past."""
    from datetime import date, timedelta

    from sqlalchemy import update

    from sidecar.register.models import Flag

    with app.extensions["forewarn"].database.transaction() as session:
        week_ago = date.today() - timedelta(days=7)
        session.execute(update(Flag).where(Flag.id == flag_id).values(review_due=week_ago))


def test_a_review_is_recorded_accessibly(person: Any, cases: Any) -> None:
    cases.notified()
    manager = person("demo.sm")
    tab_to(manager, "a[href='/console/reviews']")
    submit(manager)
    accessible(manager, "reviews-due-empty")
    flag_id = cases.notified()
    overdue(cases.client.application, flag_id)
    cases.assign_review(flag_id, "demo.sm")
    manager.reload()
    accessible(manager, "reviews-due")
    tab_to(manager, ".console-queue a")
    submit(manager)
    accessible(manager, "review")
    tab_to(manager, "button.govuk-button")
    submit(manager)
    expect(manager.locator(".govuk-error-summary")).to_be_focused()
    accessible(manager, "review-error")
    tab_to(manager, "input#outcome")
    manager.keyboard.press("Space")
    tab_to(manager, "textarea#notes")
    manager.keyboard.type("Two more incidents since the flag was raised.")
    tab_to(manager, "button.govuk-button")
    submit(manager)
    expect(manager.get_by_role("heading", name="Letter 2: review outcome")).to_be_visible()
    accessible(manager, "review-outcome-letter")


def test_withdrawal_expiry_and_the_summary_are_accessible(
    person: Any, cases: Any, console: str
) -> None:
    flag_id = cases.notified()
    manager = person("demo.csm")
    manager.goto(f"{console}/console/flags/{flag_id}/withdraw")
    accessible(manager, "withdraw")
    tab_to(manager, "button.govuk-button")
    submit(manager)
    expect(manager.locator(".govuk-error-summary")).to_be_focused()
    accessible(manager, "withdraw-error")
    tab_to(manager, "textarea#reason")
    manager.keyboard.type("Raised against the wrong customer record.")
    tab_to(manager, "button.govuk-button")
    submit(manager)
    expect(manager.locator(".govuk-notification-banner--success")).to_contain_text("withdrawn")
    accessible(manager, "subject-withdrawn")
    manager.goto(console + "/")
    tab_to(manager, "a[href='/console/flags/expiry']")
    submit(manager)
    accessible(manager, "expiry")
    manager.goto(console + "/")
    tab_to(manager, "a[href='/console/reports/summary']")
    submit(manager)
    expect(manager.get_by_role("heading", name="Committee summary")).to_be_visible()
    accessible(manager, "summary")
    tab_to(manager, "input#start-day")
    manager.keyboard.press("Control+A")
    manager.keyboard.type("31")
    tab_to(manager, "input#start-month")
    manager.keyboard.press("Control+A")
    manager.keyboard.type("2")
    tab_to(manager, "button.govuk-button")
    submit(manager)
    expect(manager.locator(".govuk-error-summary")).to_be_focused()
    accessible(manager, "summary-error")


def test_an_involved_director_is_told_why_they_cannot_decide(
    person: Any, cases: Any, console: str
) -> None:
    flag_id = cases.notified(responsible_manager="demo.director")
    appeal = cases.client.post(
        f"/api/v1/flags/{flag_id}/appeals", json={}, headers=cases.staff.officer
    ).get_json()
    director = person("demo.director")
    director.goto(f"{console}/console/flags/{flag_id}/appeals/{appeal['id']}/decision")
    expect(director.get_by_role("heading", name="You cannot decide this appeal")).to_be_visible()
    accessible(director, "appeal-decision-involved")
