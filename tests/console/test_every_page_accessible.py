"""Every console page and error state in real Chromium: axe-core, 320px reflow, the keyboard.

The console's GET routes are read from the app's URL map, so a page added without a row in
`PAGES` fails `test_every_console_page_has_a_row`. Each row says who opens the page and on
which seeded record, and which of its forms are sent empty or wrong to show the GOV.UK error
summary. Every page is also opened by someone whose role does not allow it (403), and the
refusals, missing records and conflicts a person can meet are in `STATES`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask

from sidecar.register.personas import personas
from tests.console import test_console_browser as shared
from tests.console.test_console_browser import accessible, expect, signed_in
from tests.disclosure.case import Case
from tests.disclosure.conftest import seeded
from tests.lifecycle.conftest import Cases, Staff
from tests.lookup.browser_support import served

pytestmark = shared.pytestmark

# The console suite's browser and once-on-SQLite rule.
browser = shared.browser
_once_on_sqlite = shared._once_on_sqlite


@dataclass(frozen=True)
class Sent:
    """A form of the page sent as a person would: `fill` typed in (selector, text), then
    `button` pressed, or for a GET form `query` opened; `error` says the answer is the form
    again with the error summary and inline errors (otherwise, a page of its own)."""

    name: str
    button: str = ""
    query: str = ""
    fill: tuple[tuple[str, str], ...] = ()
    error: bool = True


@dataclass(frozen=True)
class Visit:
    """How a page is reached: the persona who may use it and its path on the seeded records
    (`{name}` is a seeded id); `navigation` is False for a page that is a document on its own,
    with no header to skip (a letter as posted)."""

    persona: str | None
    path: str
    sent: tuple[Sent, ...] = ()
    navigation: bool = True


@dataclass(frozen=True)
class Download:
    """A route that answers a file to save (`kind`), not a page to read: its persona and path
    as for a `Visit`."""

    persona: str
    path: str
    kind: str


def empty(button: str = "form[method='post'] button.govuk-button", name: str = "empty") -> Sent:
    return Sent(name, button=button)


FLAG = "/console/flags/{%s}"
SUBJECT = "/console/subjects/customer/{S}"

PAGES: dict[str, Visit | Download] = {
    "console.home.home": Visit("demo.csm", "/"),
    "console.home.sign_in": Visit(
        None, "/console/sign-in", (empty("form[action*='/sign-in/demo'] button"),)
    ),
    "console.subjects.search": Visit(
        "demo.csm", "/console/subjects", (Sent("bad-ref", query="?ref=CRM+3002"),)
    ),
    "console.subjects.subject": Visit("demo.csm", SUBJECT),
    "console.proposals.propose": Visit("demo.officer", SUBJECT + "/propose", (empty(),)),
    "console.incidents.record": Visit("demo.agent", "/console/incidents/new", (empty(),)),
    "console.incidents.triage_queue": Visit("demo.sm", "/console/incidents/triage"),
    "console.incidents.triage": Visit("demo.sm", "/console/incidents/{I2}/triage", (empty(),)),
    "console.panel.queue": Visit("demo.csm", "/console/panel"),
    "console.panel.vote": Visit(
        "demo.csm", FLAG % "PROPOSED" + "/panel", (empty("form[action$='/panel'] button"),)
    ),
    "console.notices.awaiting_notice_queue": Visit("demo.csm", "/console/flags/awaiting-notice"),
    "console.notices.notice": Visit(
        "demo.csm", FLAG % "ACTIVE" + "/notice", (empty("button[name='preview']"),)
    ),
    "console.notices.guidance": Visit(
        "demo.legal", FLAG % "ACTIVE" + "/notice/guidance", (empty(),)
    ),
    "console.notices.awaiting_permission_queue": Visit(
        "demo.director", "/console/flags/awaiting-permission"
    ),
    "console.notices.permission": Visit(
        "demo.director",
        FLAG % "GUIDED" + "/notice/permission",
        (empty("form[action$='/notice/refusal'] button", "refusal-empty"),),
    ),
    "console.notices.letter": Visit("demo.csm", FLAG % "LETTERED" + "/letters/1"),
    "console.notices.print_letter": Visit(
        "demo.csm", FLAG % "LETTERED" + "/letters/1/print", navigation=False
    ),
    "console.notices.letter_pdf": Download(
        "demo.csm", FLAG % "LETTERED" + "/letters/1/pdf", "application/pdf"
    ),
    "console.appeals.windows_queue": Visit("demo.officer", "/console/appeals/windows"),
    "console.appeals.lodge": Visit("demo.officer", FLAG % "NOTIFIED" + "/appeals/new", (empty(),)),
    "console.appeals.open_queue": Visit("demo.director", "/console/appeals"),
    # The handler form always has a choice: the Senior Manager handling the appeal now.
    "console.appeals.assign": Visit(
        "demo.csm", FLAG % "APPEALED" + "/appeals/{OPEN_APPEAL}/handler"
    ),
    "console.appeals.decide": Visit(
        "demo.director", FLAG % "APPEALED" + "/appeals/{OPEN_APPEAL}/decision", (empty(),)
    ),
    "console.reviews.due_queue": Visit("demo.sm", "/console/reviews"),
    "console.reviews.assign": Visit("demo.csm", FLAG % "NOTIFIED" + "/reviewers", (empty(),)),
    "console.reviews.record": Visit("demo.sm", FLAG % "NOTIFIED" + "/review", (empty(),)),
    "console.endings.withdraw": Visit("demo.csm", FLAG % "NOTIFIED" + "/withdraw", (empty(),)),
    "console.endings.expiry": Visit("demo.csm", "/console/flags/expiry"),
    "console.reports.summary": Visit(
        "demo.csm",
        "/console/reports/summary",
        (
            Sent(
                "bad-date",
                query="?start=31&start=2&start=2026&end=1&end=3&end=2026",
            ),
        ),
    ),
    "console.privacy.access_log": Visit(
        "demo.auditor", "/console/access-log", (Sent("bad-action", query="?action=Not+An+Action"),)
    ),
    "console.privacy.verify_log": Visit(
        "demo.auditor",
        "/console/access-log/verify",
        (Sent("result", button="form[method='post'] button.govuk-button", error=False),),
    ),
    "console.privacy.alert_queue": Visit("demo.auditor", "/console/privacy-alerts"),
    "console.privacy.alert": Visit("demo.auditor", "/console/privacy-alerts/{ALERT}", (empty(),)),
    "console.subject_access.start": Visit(
        "demo.privacy",
        "/console/subject-access",
        (Sent("bad-ref", query="?ref=CRM+1&request_ref="),),
    ),
    "console.subject_access.export": Visit(
        "demo.privacy", SUBJECT + "/subject-access?request_ref=SAR-AXE-1"
    ),
    "console.subject_access.download": Download(
        "demo.privacy", SUBJECT + "/subject-access.json?request_ref=SAR-AXE-2", "application/json"
    ),
    "console.operations.sync_health": Visit("demo.admin", "/console/sync"),
    "console.operations.notifications": Visit("demo.admin", "/console/notifications"),
    "console.operations.system": Visit("demo.admin", "/console/system"),
    "console.staff_access.sessions": Visit(
        "demo.admin",
        "/console/sessions?user=demo.admin",
        (
            Sent("find-empty", query="?user="),
            Sent(
                "end-empty",
                button="form[action$='/sessions/end'] button",
                fill=(("input#end-user", ""),),
            ),
        ),
    ),
}


@dataclass(frozen=True)
class State:
    """A page a person meets when the console refuses them, cannot find what they asked or
    cannot do it now: its status, heading and the sentence that says why."""

    persona: str
    path: str
    status: int
    heading: str
    says: str = ""


NOT_FOUND = "Check the address, or start from the home page."
TOO_LATE = "This cannot be done now"

STATES: dict[str, State] = {
    "unknown-page": State("demo.csm", "/console/nowhere", 404, "Page not found", NOT_FOUND),
    "unknown-flag": State("demo.csm", "/console/flags/nope/notice", 404, "Page not found"),
    "unknown-letter": State("demo.csm", FLAG % "LETTERED" + "/letters/99", 404, "Page not found"),
    "unknown-incident": State("demo.sm", "/console/incidents/nope/triage", 404, "Page not found"),
    "unknown-appeal": State(
        "demo.director", FLAG % "A" + "/appeals/nope/decision", 404, "Page not found"
    ),
    "unknown-alert": State("demo.auditor", "/console/privacy-alerts/nope", 404, "Page not found"),
    "letter-of-a-case-not-theirs": State(
        "demo.csm", FLAG % "A" + "/letters/1", 403, "You cannot do this"
    ),
    "involved-director": State(
        "demo.director",
        FLAG % "INVOLVED" + "/appeals/{INVOLVED_APPEAL}/decision",
        200,
        "Decide the appeal",
        "You took part as responsible manager, so another Service Director must decide it.",
    ),
    "withholding-refused": State(
        "demo.director",
        FLAG % "REFUSED" + "/notice/permission",
        200,
        "Permission to withhold the decision letter",
        "The decision letter must be sent to the person",
    ),
    "notice-after-refusal": State(
        "demo.csm",
        FLAG % "REFUSED" + "/notice",
        200,
        "Tell the person about the flag",
        "refused permission to withhold this letter on guidance LG-AXE-1",
    ),
    "notice-already-given": State(
        "demo.csm",
        FLAG % "A" + "/notice",
        200,
        "Tell the person about the flag",
        "The person's notice was given already.",
    ),
    "appeal-before-notice": State(
        "demo.officer",
        FLAG % "PROPOSED" + "/appeals/new",
        200,
        "Record an appeal",
        "Only an active flag can be appealed. This flag is proposed.",
    ),
}
"""Refusals and missing records; the seeded ids fill `{name}`."""


def pages() -> dict[str, Visit]:
    return {name: row for name, row in PAGES.items() if isinstance(row, Visit)}


FOR_EVERY_ROLE = {"console.home.home"}
"""Pages every role may use, so no one meets their 403 page."""


def _without(app: Flask, action: str) -> str | None:
    """The first demo persona whose role does not hold `action`."""
    settings = app.extensions["forewarn"].settings
    roles = settings.access.roles
    return next(
        (p.user_id for p in personas(settings) if action not in roles.get(p.role, ())), None
    )


def _console_pages(app: Flask) -> dict[str, str | None]:
    """Each console GET route's endpoint and the permission it declares."""
    found = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("console.") and "GET" in (rule.methods or ()):
            spec = app.view_functions[rule.endpoint].forewarn_endpoint
            found[rule.endpoint] = spec.action
    return found


@dataclass
class Console:
    """The seeded sidecar on a loopback port, and one signed-in tab per persona."""

    app: Flask
    url: str
    ids: dict[str, str]
    browser: Any
    _tabs: dict[str | None, Any]

    def tab(self, persona: str | None) -> Any:
        """The persona's own tab (its own cookies), signed in once; None is not signed in."""
        if persona not in self._tabs:
            context = self.browser.new_context(viewport={"width": 1024, "height": 768})
            if persona is None:
                self._tabs[persona] = context.new_page()
            else:
                self._tabs[persona] = signed_in(context, self.url, persona)
        return self._tabs[persona]

    def open(self, persona: str | None, path: str, status: int = 200) -> Any:
        page = self.tab(persona)
        response = page.goto(self.url + path.format(**self.ids))
        assert response is not None and response.status == status, (path, response.status)
        return page


def _extra_records(case: Case) -> None:
    """Beside the leak test's case, a flag at each stage whose page has a form to fill."""
    api = case.app.test_client()

    def headers(*roles: str, user: str, name: str | None = None) -> dict:
        return case.sign_in(roles[0], user).headers

    staff = Staff(headers)
    cases = Cases(api, staff)
    ids = case.ids
    ids["PROPOSED"] = cases.propose()
    ids["ACTIVE"] = cases.active()
    ids["NOTIFIED"] = cases.notified()
    # A letter the demo Customer Support Manager sent, and so may open again.
    ids["LETTERED"] = cases.active()
    sent = {"method": "letter", "recipient_name": "Mr T Example"}
    path = f"/api/v1/flags/{ids['LETTERED']}/notice"
    csm = headers("customer_support_manager", user="demo.csm")
    assert api.post(path, json=sent, headers=csm).status_code == 201
    legal = headers("legal", user="u.legal")
    for name in ("GUIDED", "REFUSED"):
        ids[name] = cases.active()
        guidance = {"legal_guidance_ref": "LG-AXE-1", "reason": "The officer would be at risk."}
        path = f"/api/v1/flags/{ids[name]}/notice/guidance"
        assert api.post(path, json=guidance, headers=legal).status_code == 201
    refusal = {"reason": "The person must be told: the risk is managed by visits in pairs."}
    path = f"/api/v1/flags/{ids['REFUSED']}/notice/refusal"
    assert api.post(path, json=refusal, headers=staff.director).status_code == 201
    for flag, appeal, changes in (
        ("APPEALED", "OPEN_APPEAL", {}),
        ("INVOLVED", "INVOLVED_APPEAL", {"responsible_manager": "demo.director"}),
    ):
        ids[flag] = cases.notified(**changes)
        lodged = api.post(f"/api/v1/flags/{ids[flag]}/appeals", json={}, headers=staff.officer)
        assert lodged.status_code == 201, lodged.get_json()
        ids[appeal] = lodged.get_json()["id"]


@pytest.fixture(scope="module")
def console(
    browser: Any, engine_kind: str, migrated_template: str, tmp_path_factory: Any
) -> Iterator[Console]:
    if engine_kind != "sqlite":
        pytest.skip("the browser suite runs once, on SQLite; the page tests cover PostgreSQL")
    base = tmp_path_factory.mktemp("every-page")
    for case in seeded(base, engine_kind, migrated_template):
        _extra_records(case)
        case.app.config["TESTING"] = False
        with served(case.app) as url:
            yield Console(case.app, url, case.ids, browser, {})


INTERACTIVE = "a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]"
STOPS = """(selector) => Object.fromEntries([...document.querySelectorAll(selector)]
  .filter((e) => e.tabIndex >= 0 && !e.disabled && e.checkVisibility({visibilityProperty: true}))
  .map((e, i) => { e.dataset.tabStop = e.type === "radio" ? "radio " + e.name : String(i);
    return [e.dataset.tabStop, e.outerHTML.slice(0, 160)]; }))"""
"""Each visible control the keyboard must reach, marked with its stop (a radio group's name)."""
FOCUSED = "() => document.activeElement?.dataset.tabStop ?? null"


def shown_as_text(page: Any, name: str) -> None:
    """No markup escaped into what the page shows (a tag read out as text)."""
    words = page.locator("body").inner_text()
    assert not re.search(r"</?[a-z]+[ >]", words), f"{name}: markup shown as text"


def skip_link_works(page: Any, name: str) -> None:
    """The first Tab shows the skip link; Enter on it moves the focus to the main content."""
    page.keyboard.press("Tab")
    skip = page.locator("a.govuk-skip-link")
    expect(skip, f"{name}: the first Tab does not reach the skip link").to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main#main-content"), f"{name}: skip link leads nowhere").to_be_focused()


def every_control_reached_by_tab(page: Any, name: str) -> None:
    """Tab, from wherever the focus is, reaches every visible link, button and box (a radio
    group is one stop, as the arrow keys move within it)."""
    stops = page.evaluate(STOPS, INTERACTIVE)
    reached: set[str] = set()
    for _ in range(2 * len(stops) + 10):
        if reached >= stops.keys():
            break
        page.keyboard.press("Tab")
        reached.add(page.evaluate(FOCUSED))
    missing = [stops[stop] for stop in stops.keys() - reached]
    assert not missing, f"{name}: Tab never reaches {missing}"


def test_every_console_page_has_a_row(console: Console) -> None:
    routes = _console_pages(console.app)
    missing = sorted(set(routes) - set(PAGES))
    stale = sorted(set(PAGES) - set(routes))
    assert not missing, f"console pages without a row in PAGES: {missing}"
    assert not stale, f"PAGES rows for pages that no longer exist: {stale}"
    held_by_all = {e for e, a in routes.items() if a and _without(console.app, a) is None}
    assert held_by_all == FOR_EVERY_ROLE


@pytest.mark.parametrize("endpoint", sorted(pages()))
def test_the_page_is_accessible_and_operable_by_keyboard(console: Console, endpoint: str) -> None:
    visit = pages()[endpoint]
    page = console.open(visit.persona, visit.path)
    expect(page.locator(".govuk-error-summary")).to_have_count(0)
    shown_as_text(page, endpoint)
    if visit.navigation:
        skip_link_works(page, endpoint)
    every_control_reached_by_tab(page, endpoint)
    accessible(page, endpoint)


SENT = [(endpoint, sent) for endpoint, visit in sorted(pages().items()) for sent in visit.sent]


@pytest.mark.parametrize(("endpoint", "sent"), SENT, ids=[f"{e}-{s.name}" for e, s in SENT])
def test_each_forms_error_state_is_accessible(console: Console, endpoint: str, sent: Sent) -> None:
    visit = pages()[endpoint]
    status = 422 if sent.error else 200
    if sent.query:
        page = console.open(visit.persona, visit.path.split("?")[0] + sent.query, status)
    else:
        page = console.open(visit.persona, visit.path)
        for box, value in sent.fill:
            page.fill(box, value)
        with page.expect_navigation() as answer:
            page.locator(sent.button).first.click()
        assert answer.value is not None and answer.value.status == status, answer.value.status
    if sent.error:
        expect(page.locator(".govuk-error-summary")).to_be_visible()
        expect(page.locator(".govuk-error-message").first).to_be_visible()
        expect(page).to_have_title(re.compile("^Error: "))
    accessible(page, f"{endpoint}-{sent.name}")


@pytest.mark.parametrize(
    "endpoint", sorted(e for e, v in pages().items() if v.persona and e not in FOR_EVERY_ROLE)
)
def test_the_page_refused_to_a_role_without_it_is_accessible(
    console: Console, endpoint: str
) -> None:
    action = _console_pages(console.app)[endpoint]
    assert action is not None
    visit = pages()[endpoint]
    refused = _without(console.app, action)
    assert refused is not None
    page = console.open(refused, visit.path, 403)
    expect(page.get_by_role("heading", level=1)).to_have_text("You cannot use this page")
    accessible(page, f"{endpoint}-forbidden")


@pytest.mark.parametrize(
    "endpoint", sorted(e for e, row in PAGES.items() if isinstance(row, Download))
)
def test_a_download_is_a_file_to_save_not_a_page(console: Console, endpoint: str) -> None:
    row = PAGES[endpoint]
    assert isinstance(row, Download)
    tab = console.tab(row.persona)
    answer = tab.request.get(console.url + row.path.format(**console.ids))
    assert answer.status == 200, answer.status
    assert answer.headers["content-type"].startswith(row.kind)
    assert answer.headers["content-disposition"].startswith("attachment;")


@pytest.mark.parametrize("name", sorted(STATES))
def test_refusals_and_missing_records_are_accessible(console: Console, name: str) -> None:
    state = STATES[name]
    page = console.open(state.persona, state.path, state.status)
    expect(page.get_by_role("heading", level=1)).to_contain_text(state.heading)
    expect(page.locator("main")).to_contain_text(state.says)
    shown_as_text(page, name)
    skip_link_works(page, name)
    accessible(page, name)


def test_a_form_sent_from_an_expired_page_is_answered_accessibly(console: Console) -> None:
    page = console.open("demo.csm", FLAG % "NOTIFIED" + "/withdraw")
    # What a page left open past its session sends: a token the sidecar no longer accepts.
    page.locator("form[action$='/withdraw'] [name=csrf_token]").evaluate(
        "(box) => { box.value = 'expired'; }"
    )
    page.fill("textarea#reason", "Raised against the wrong customer record.")
    with page.expect_navigation() as answer:
        page.locator("form[action$='/withdraw'] button").click()
    assert answer.value is not None and answer.value.status == 400
    expect(page.get_by_role("heading", level=1)).to_have_text("Your form could not be sent")
    skip_link_works(page, "expired-form")
    accessible(page, "expired-form")
