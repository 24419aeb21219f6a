"""The widget in real Chromium: each state, keyboard-only details, no cookies, axe-core."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, update

from sidecar import create_app
from sidecar.audit.models import AuditEntry
from sidecar.lookup.models import AccessGrant
from sidecar.storage.keys import KeyFiles
from tests import factories
from tests.identity.test_routes import ROLE_PERMISSIONS
from tests.lookup.browser_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    FakeCrm,
    Recorder,
    Server,
    axe_violations,
    describe,
)
from tests.lookup.conftest import _register, audit_store_broken

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason="/usr/bin/chromium is absent: install Debian's chromium package (.ci/run does)",
    ),
]

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TEXT = {
    "loading": "Checking for warning flags…",
    "none": "No warning flag on this record",
    "amber": "Amber warning flag",
    "red": "Red warning flag",
    "error": "Flag status unavailable: do not assume there is no warning",
}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(autouse=True)
def _once_on_sqlite(engine_kind: str) -> None:
    if engine_kind != "sqlite":
        pytest.skip("the browser suite runs once, on SQLite; the API suite covers PostgreSQL")


@dataclass
class Live:
    app: Flask
    sidecar: str
    crm: str
    recorder: Recorder
    database_url: str

    def register(self) -> Any:
        return _register(self.app)

    def record(self, ref: str = "CRM-1", **params: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in {"kind": "customer", "ref": ref, **params}.items())
        return f"{self.crm}/record?{query}"

    def audit(self, action: str) -> list[AuditEntry]:
        with self.app.extensions["forewarn"].database.transaction() as session:
            query = select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)
            return list(session.scalars(query))


@pytest.fixture
def live(make_settings: Callable[..., Any], database_url: str) -> Iterator[Callable[..., Live]]:
    """Start the sidecar (as http://localhost:P) and a fake CRM (as http://crm.test:Q)."""
    servers: list[Server] = []
    apps: list[Flask] = []

    def start(**overrides: Any) -> Live:
        crm = Server(lambda environ, start_response: iter(()))
        servers.append(crm)
        crm_origin = f"http://crm.test:{crm.port}"
        lookup = {"crm_origins": [crm_origin], **overrides.pop("lookup", {})}
        settings = make_settings(lookup=lookup, **overrides)
        app = create_app(settings)
        apps.append(app)
        recorder = Recorder(app)
        sidecar = Server(recorder)
        servers.append(sidecar)
        base = f"http://localhost:{sidecar.port}"
        key = KeyFiles.of(settings.instance_dir).launch_demo_key.read_bytes()
        crm.app = FakeCrm(base, key, settings.deployment.public_url)
        return Live(app, base, crm_origin, recorder, database_url)

    yield start
    for server in servers:
        server.close()
    for app in apps:
        app.extensions["forewarn"].database.dispose()


@pytest.fixture
def open_page(browser: Any) -> Iterator[Callable[..., Any]]:
    contexts = []

    def new_page(**options: Any) -> Any:
        context = browser.new_context(**{"viewport": {"width": 1024, "height": 768}, **options})
        contexts.append(context)
        return context.new_page()

    yield new_page
    for context in contexts:
        context.close()


def shoot(target: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    target.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def no_axe_violations(target: Any) -> None:
    violations = axe_violations(target)
    assert violations == [], describe(violations)


def seed(live: Live, state: str) -> None:
    with live.register() as (session, ring):
        customer = factories.subject(session, "customer", "CRM-1")
        if state == "amber":
            factories.flag(
                session,
                ring,
                customer,
                level="amber",
                categories=("persistent_complainer",),
                restrictions=(
                    {"code": "time_limited_calls", "note": "10 minutes"},
                    {"code": "writing_only"},
                ),
                handling="Calls limited to 10 minutes; answer letters in writing",
            )
        elif state in ("red", "error"):
            flag = factories.flag(
                session,
                ring,
                customer,
                categories=("physical_violence", "threat_of_physical_abuse"),
                restrictions=({"code": "visits_in_pairs"},),
                handling="Visit in pairs only",
                reason="Assaulted a housing officer during a home visit",
                control_measures="Meet at the civic centre with two officers",
            )
            factories.staff(session, "u.manager", "Morgan Manager", "senior_manager")
            factories.incident(session, ring, flag)
        elif state == "appeal":
            flag = factories.flag(
                session, ring, customer, level="amber", categories=("verbal_hate_abuse",)
            )
            factories.staff(session, "u.senior", "Sam Senior", "senior_manager")
            factories.appeal(session, flag)


@pytest.mark.parametrize("state", ["loading", "none", "amber", "red", "appeal", "error"])
def test_each_state_reads_in_words_with_an_icon_and_passes_axe(live, open_page, state) -> None:
    site = live()
    seed(site, state)
    page = open_page()
    widget = page.locator("forewarn-flag")
    if state == "error":
        with audit_store_broken(site.database_url):
            page.goto(site.record())
            expect(widget.locator("[role=alert]")).to_have_text(TEXT["error"])
    else:
        page.goto(site.record(**({"hold": "1"} if state == "loading" else {})))
    expectations = {
        "loading": ("[role=status]", TEXT["loading"], []),
        "none": ("[role=status]", TEXT["none"], []),
        "amber": (
            "[role=status]",
            TEXT["amber"],
            [
                "Amber flag: Persistent complainer",
                "Restrictions: Time-limited calls: 10 minutes; Writing only",
                "Handling: Calls limited to 10 minutes; answer letters in writing",
                "Review due: 12 May 2027",
            ],
        ),
        "red": (
            "[role=alert]",
            TEXT["red"],
            ["Red flag: Physical violence; Threat of physical abuse", "Visits in pairs"],
        ),
        "appeal": ("[role=status]", TEXT["amber"], ["Appeal pending: handled by Sam Senior"]),
        "error": ("[role=alert]", TEXT["error"], []),
    }
    region, headline, details = expectations[state]
    expect(widget.locator(region)).to_contain_text(headline)
    for text in details:
        expect(widget).to_contain_text(text)
    expect(widget.locator(".head > svg.icon[aria-hidden=true]")).to_have_count(1)
    if state != "none":
        expect(widget).not_to_contain_text(TEXT["none"])
    if state == "appeal":
        expect(widget.get_by_text("Appeal pending", exact=False)).to_have_count(1)
    if state == "amber":
        # The restrictions are said once, not again as handling derived from them.
        expect(widget.get_by_text("Writing only", exact=False)).to_have_count(1)
    if state == "error":
        expect(widget.get_by_role("button", name="Retry")).to_be_visible()
    shoot(widget, f"widget-{state}")
    no_axe_violations(page)
    if state == "error":
        widget.get_by_role("button", name="Retry").click()
        expect(widget.locator("[role=status], [role=alert]")).to_contain_text([TEXT["red"]])


def test_from_the_decision_letter_the_banner_names_the_senior_manager_and_the_adjustments(
    live, open_page
) -> None:
    site = live(lifecycle={"name_handler_in_window": True})
    with site.register() as (session, ring):
        customer = factories.subject(session, "customer", "CRM-1")
        told = factories.flag(
            session,
            ring,
            customer,
            level="amber",
            adjustments=("Contact by letter in large print", "Allow extra time on calls"),
        )
        factories.notice(session, told, handling_manager=("u.senior", "Sam Senior"))
    page = open_page()
    widget = page.locator("forewarn-flag")
    page.goto(site.record())
    expect(widget.locator("[role=status]")).to_contain_text(TEXT["amber"])
    expect(widget).to_contain_text("Appeal window open: the case is handled by Sam Senior")
    # The agent applies the person's reasonable adjustments on their own record too.
    expect(widget).to_contain_text(
        "Adjustments: Contact by letter in large print; Allow extra time on calls"
    )
    expect(widget).not_to_contain_text("Appeal pending")
    shoot(widget, "widget-appeal-window")
    no_axe_violations(page)


@pytest.mark.parametrize(
    ("cause", "setup", "params"),
    [
        ("launch token refused (401)", {}, {"bad": "1"}),
        (
            "role without banner.read (403)",
            {"access": {"roles": ROLE_PERMISSIONS | {"agent": frozenset()}}},
            {"roles": "agent"},
        ),
        ("audit store down (503)", {}, {}),
        ("API unreachable", {}, {"api": "http://127.0.0.1:47"}),
    ],
)
def test_every_failure_is_the_error_state_never_no_flag(
    live, open_page, cause, setup, params
) -> None:
    site = live(**setup)
    page = open_page()
    widget = page.locator("forewarn-flag")
    if cause.startswith("audit"):
        with audit_store_broken(site.database_url):
            page.goto(site.record("CRM-404", **params))
            expect(widget.locator("[role=alert]")).to_have_text(TEXT["error"])
    else:
        page.goto(site.record("CRM-404", **params))
        expect(widget.locator("[role=alert]")).to_have_text(TEXT["error"])
    page.wait_for_timeout(300)
    expect(widget).not_to_contain_text(TEXT["none"])
    # A refused launch token is not answered by asking the host again and again.
    assert page.evaluate("window.tokensGiven") == 1


def test_a_host_that_never_gives_a_token_ends_in_the_error_state(live, open_page) -> None:
    site = live()
    page = open_page()
    page.clock.install()
    page.goto(site.record(hold="1"))
    widget = page.locator("forewarn-flag")
    expect(widget.locator("[role=status]")).to_have_text(TEXT["loading"])
    page.clock.run_for(2_000)
    expect(widget.locator("[role=alert]")).to_have_text(TEXT["error"])


def test_an_expired_session_asks_the_host_for_a_new_launch_token(
    live, open_page, make_settings, instance_dir
) -> None:
    site = live()
    seed(site, "red")
    page = open_page()
    widget = page.locator("forewarn-flag")
    page.goto(site.record())
    expect(widget.locator("[role=alert]")).to_contain_text(TEXT["red"])
    # The sidecar restarts with a new session secret: every bearer token it issued is now void.
    KeyFiles.of(instance_dir).session_secret.write_text("a-new-session-secret-" + "x" * 40)
    restarted = create_app(site.app.extensions["forewarn"].settings)
    try:
        site.recorder.app = restarted
        widget.evaluate("(element) => element.setAttribute('subject-ref', 'CRM-2')")
        expect(widget.locator("[role=status]")).to_have_text(TEXT["none"])
        assert page.evaluate("window.tokensGiven") == 2
        assert site.recorder.paths("POST").count("/auth/launch") == 2
    finally:
        restarted.extensions["forewarn"].database.dispose()


def focused_text(page: Any) -> str | None:
    return page.evaluate(
        """() => {
            const active = document.querySelector('forewarn-flag').shadowRoot.activeElement;
            return active ? (active.textContent || active.value || active.type) : null;
        }"""
    )


def focus_in_dialog(page: Any) -> bool:
    return page.evaluate(
        """() => {
            const host = document.querySelector('forewarn-flag');
            const active = host.shadowRoot.activeElement;
            return document.activeElement === host && !!active && !!active.closest('dialog');
        }"""
    )


def tab_until(page: Any, predicate: Callable[[], bool], limit: int = 12) -> None:
    for _ in range(limit):
        if predicate():
            return
        page.keyboard.press("Tab")
    assert predicate(), f"focus never got there; it is on {focused_text(page)!r}"


def test_details_by_keyboard_only_with_focus_trapped_and_returned(live, open_page) -> None:
    site = live()
    seed(site, "red")
    page = open_page()
    widget = page.locator("forewarn-flag")
    page.goto(site.record())
    expect(widget.locator("[role=alert]")).to_contain_text(TEXT["red"])

    tab_until(page, lambda: (focused_text(page) or "").startswith("View details"))
    page.keyboard.press("Enter")
    dialog = widget.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_have_attribute("aria-modal", "true")
    expect(dialog).to_contain_text("Your access is recorded")
    expect(dialog.get_by_role("radio").first).to_be_focused()
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    page.keyboard.type("Home visit on Tuesday about the damp")
    shoot(page, "widget-details-form")
    no_axe_violations(page)
    tab_until(page, lambda: focused_text(page) == "Request access")
    page.keyboard.press("Enter")

    expect(dialog).to_contain_text("Assaulted a housing officer during a home visit")
    expect(dialog).to_contain_text("Meet at the civic centre with two officers")
    expect(dialog).to_contain_text("Morgan Manager")
    expect(dialog).to_contain_text("Visits in pairs")
    expect(dialog).to_contain_text("1 September 2026, In person: Threats, Physical violence")
    shoot(page, "widget-details")
    no_axe_violations(page)
    for key in ["Tab"] * 4 + ["Shift+Tab"] * 4:
        page.keyboard.press(key)
        assert focus_in_dialog(page), f"{key} let focus leave the dialog"

    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert (focused_text(page) or "").startswith("View details")
    shadow = widget.evaluate("(element) => element.shadowRoot.innerHTML")
    assert "Assaulted" not in shadow and "civic centre" not in shadow
    [grant] = site.audit("access_grant.create")
    assert (grant.purpose_code, grant.purpose_text) == (
        "home_visit",
        "Home visit on Tuesday about the damp",
    )
    [read] = site.audit("details.read")
    assert (read.outcome, read.actor_id) == ("allowed", "u.visiting_officer")
    assert page.evaluate("() => localStorage.length + sessionStorage.length") == 0


def test_a_property_shows_its_resident_s_guidance_and_opens_their_details_for_a_visit(
    live, open_page
) -> None:
    site = live()
    with site.register() as (session, ring):
        home = factories.subject(session, "property", "100023336956")
        tenant = factories.subject(session, "customer", "CRM-7")
        factories.link(session, tenant, home)
        flag = factories.flag(
            session,
            ring,
            tenant,
            restrictions=({"code": "visits_in_pairs"},),
            handling="Visit in pairs; stay by the door",
            adjustments=("Contact by letter in large print",),
            reason="Threatened a surveyor with a knife",
        )
        factories.panel(session, flag, "hs_manager", "u.hs", "Hal Safety")
    page = open_page()
    widget = page.locator("forewarn-flag")
    page.goto(site.record("100023336956", kind="property"))
    expect(widget.locator("[role=alert]")).to_contain_text(TEXT["red"])
    for text in (
        "Red flag on a linked customer: Physical violence",
        "Restrictions: Visits in pairs",
        "Handling: Visit in pairs; stay by the door",
        "Adjustments: Contact by letter in large print",
    ):
        expect(widget).to_contain_text(text)
    expect(widget).not_to_contain_text("CRM-7")
    no_axe_violations(page)
    widget.get_by_role("button", name="View details").click()
    dialog = widget.get_by_role("dialog")
    dialog.get_by_role("radio").first.check()
    dialog.get_by_role("textbox", name="Explain the business need").fill(
        "Gas safety visit on Thursday"
    )
    dialog.get_by_role("button", name="Request access").click()
    expect(dialog).to_contain_text("Threatened a surveyor with a knife")
    expect(dialog.get_by_role("heading", level=2)).to_have_text(
        "Flag details: Red flag, customer CRM-7"
    )
    expect(dialog).to_contain_text("Hal Safety (Health and Safety Manager)")
    no_axe_violations(page)
    [grant] = site.audit("access_grant.create")
    assert (grant.subject_kind, grant.subject_ref) == ("property", "100023336956")
    [read] = site.audit("details.read")
    assert (read.outcome, read.subject_ref) == ("allowed", "CRM-7")


def test_a_refused_details_request_is_shown_and_audited(live, open_page) -> None:
    site = live()
    seed(site, "red")
    page = open_page()
    widget = page.locator("forewarn-flag")
    page.goto(site.record())
    widget.get_by_role("button", name="View details").click()
    dialog = widget.get_by_role("dialog")
    dialog.get_by_label("Case work on this customer").check()
    dialog.get_by_label("Explain the business need").fill("short")
    dialog.get_by_role("button", name="Request access").click()
    expect(dialog).to_contain_text("Write at least 15 characters (5 so far).")
    expect(dialog.get_by_label("Explain the business need")).to_be_focused()
    dialog.get_by_label("Explain the business need").fill("Reviewing the case before the panel")
    dialog.get_by_role("button", name="Request access").click()
    expect(dialog).to_contain_text("Assaulted a housing officer")
    dialog.get_by_role("button", name="Close").click()

    # The grant runs out while the page stays open; the next look is refused by the server.
    with site.app.extensions["forewarn"].database.transaction() as session:
        session.execute(update(AccessGrant).values(expires_at=AccessGrant.created_at))
    widget.get_by_role("button", name="View details").click()
    expect(dialog.locator("[role=alert]")).to_contain_text("Access refused: no live access grant")
    expect(dialog).not_to_contain_text("Assaulted")
    expect(dialog.get_by_role("button", name="Request access")).to_be_visible()
    shoot(page, "widget-details-refused")
    no_axe_violations(page)
    outcomes = [entry.outcome for entry in site.audit("details.read")]
    assert outcomes == ["allowed", "denied"]


@pytest.mark.parametrize("state", ["red", "none"])
def test_a_banner_that_can_no_longer_be_confirmed_says_it_may_be_out_of_date(
    live, open_page, state
) -> None:
    site = live()
    seed(site, state)
    page = open_page()
    page.clock.install()
    widget = page.locator("forewarn-flag")
    page.goto(site.record())
    expect(widget).to_contain_text(TEXT[state])
    shown_at = page.evaluate(
        "() => new Date().toLocaleTimeString('en-GB', {hour: '2-digit', minute: '2-digit'})"
    )
    page.route("**/api/v1/**", lambda route: route.abort())
    page.clock.run_for(61_000)
    if state == "none":
        # "No flag" is never kept on trust: it becomes the error state.
        expect(widget.locator("[role=alert]")).to_have_text(TEXT["error"])
        expect(widget).not_to_contain_text(TEXT["none"])
    else:
        expect(widget.locator("[role=alert]")).to_contain_text(
            f"Forewarn could not be reached: this may be out of date. Last confirmed at {shown_at}."
        )
        expect(widget).to_contain_text("Red flag: Physical violence")
        expect(widget.get_by_role("button", name="Check again")).to_be_visible()
        shoot(widget, "widget-out-of-date")
        no_axe_violations(page)
        page.unroute("**/api/v1/**")
        widget.get_by_role("button", name="Check again").click()
        expect(widget).not_to_contain_text("may be out of date")
        expect(widget).to_contain_text("Red flag: Physical violence")


def test_an_agent_is_not_offered_details(live, open_page) -> None:
    site = live()
    seed(site, "red")
    page = open_page()
    widget = page.locator("forewarn-flag")
    page.goto(site.record(roles="agent"))
    expect(widget.locator("[role=alert]")).to_contain_text(TEXT["red"])
    expect(widget.get_by_role("button", name="View details")).to_have_count(0)


def test_widget_needs_no_cookie_while_third_party_cookies_are_blocked(live, open_page) -> None:
    site = live()
    seed(site, "red")
    page = open_page()
    # First show that this browser really blocks cookies for a site framed by another site.
    page.goto(f"{site.crm}/framing?kind=customer&ref=CRM-1")
    page.evaluate(
        "(src) => { const f = document.createElement('iframe'); f.src = src; "
        "f.title = 'probe'; document.body.append(f); }",
        f"{site.sidecar}/__cookie-probe",
    )
    probe = page.frame_locator("iframe[title=probe]").locator("body[data-sent]")
    expect(probe).to_have_attribute("data-sent", "none")

    page.goto(site.record())
    expect(page.locator("forewarn-flag [role=alert]")).to_contain_text(TEXT["red"])
    page.goto(f"{site.crm}/frame-host?kind=customer&ref=CRM-1")
    embedded = page.frame_locator("#embed").locator("forewarn-flag")
    expect(embedded.locator("[role=alert]")).to_contain_text(TEXT["red"])
    shoot(page, "widget-iframe-embed")
    calls = [s for s in site.recorder.seen if s.path.startswith(("/api/", "/auth/"))]
    assert {s.path for s in calls} >= {"/auth/launch", "/api/v1/subjects/customer/CRM-1/banner"}
    assert [s.cookie for s in calls] == [None] * len(calls)
    assert site.crm in {s.origin for s in calls}


def test_post_message_from_a_foreign_origin_is_ignored(live, open_page) -> None:
    site = live()
    seed(site, "red")
    page = open_page()
    page.goto(f"{site.crm}/frame-host?kind=customer&ref=CRM-1&hold=1&evil=1")
    evil = page.frame_locator("iframe[title=Advert]").locator("body[data-sent=yes]")
    expect(evil).to_have_count(1)
    page.wait_for_timeout(500)
    embedded = page.frame_locator("#embed").locator("forewarn-flag")
    expect(embedded.locator("[role=status]")).to_have_text(TEXT["loading"])
    assert "/auth/launch" not in site.recorder.paths("POST")
    page.evaluate("window.sendToken()")
    expect(embedded.locator("[role=alert]")).to_contain_text(TEXT["red"])
    assert site.recorder.paths("POST").count("/auth/launch") == 1


def test_a_site_not_in_the_allow_list_cannot_frame_the_embed_page(live, open_page) -> None:
    site = live()
    page = open_page()
    blocked: list[str] = []
    page.on("console", lambda message: blocked.append(message.text))
    foreign = site.crm.replace("crm.test", "evil.test")
    page.goto(f"{foreign}/framing?kind=customer&ref=CRM-1")
    page.wait_for_timeout(500)
    assert page.frame_locator("#embed").locator("forewarn-flag").count() == 0
    assert any("frame-ancestors" in text for text in blocked), blocked


def test_a_launch_token_posted_into_the_embed_page_signs_it_in(live, open_page) -> None:
    site = live()
    seed(site, "amber")
    page = open_page()
    page.goto(f"{site.crm}/post-host?kind=customer&ref=CRM-1")
    embedded = page.frame_locator("iframe[name=embed]").locator("forewarn-flag")
    expect(embedded.locator("[role=status]")).to_contain_text(TEXT["amber"])
    assert embedded.evaluate("(element) => element.dataset.launchToken") is None
    no_axe_violations(page.frame(name="embed"))


@pytest.mark.parametrize(("width", "scale"), [(320, 1), (640, 2)])
def test_usable_at_320_px_and_at_200_percent_zoom(live, open_page, width, scale) -> None:
    site = live()
    seed(site, "red")
    page = open_page(viewport={"width": width, "height": 700}, device_scale_factor=scale)
    widget = page.locator("forewarn-flag")
    page.goto(site.record())
    expect(widget.locator("[role=alert]")).to_contain_text(TEXT["red"])
    overflow = "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    assert page.evaluate(overflow) <= 0
    widget.get_by_role("button", name="View details").click()
    dialog = widget.get_by_role("dialog")
    expect(dialog.get_by_role("button", name="Request access")).to_be_visible()
    box = dialog.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width
    dialog.get_by_role("button", name="Request access").scroll_into_view_if_needed()
    expect(dialog.get_by_role("button", name="Request access")).to_be_in_viewport()
    shoot(page, f"widget-{width}px-x{scale}")


def test_demo_crm_page_shows_red_amber_appeal_no_flag_and_error(live, open_page) -> None:
    from sidecar.register.demo import seed as seed_demo

    site = live()
    seed_demo(site.app.extensions["forewarn"].settings)
    page = open_page(viewport={"width": 1100, "height": 900})
    expected = {
        "CRM-1001": ("[role=alert]", TEXT["red"]),
        "CRM-1002": ("[role=status]", TEXT["amber"]),
        "CRM-1003": (".flags", "Appeal pending: handled by"),
        "CRM-1004": ("[role=status]", TEXT["none"]),
    }
    for ref, (region, text) in expected.items():
        page.goto(f"{site.sidecar}/demo/crm?kind=customer&ref={ref}")
        widgets = page.locator("forewarn-flag")
        expect(widgets.nth(0).locator(region)).to_contain_text(text)
        embedded = page.frame_locator("iframe").locator("forewarn-flag")
        expect(embedded.locator(region)).to_contain_text(text)
        expect(widgets.nth(1).locator("[role=alert]")).to_have_text(TEXT["error"])
        shoot(page, f"demo-crm-{ref}")
        no_axe_violations(page)


def test_the_iframe_embed_grows_to_show_the_whole_details_dialog(live, open_page) -> None:
    from sidecar.register.demo import seed as seed_demo

    site = live()
    seed_demo(site.app.extensions["forewarn"].settings)
    page = open_page(viewport={"width": 1100, "height": 900})
    page.goto(f"{site.sidecar}/demo/crm?kind=customer&ref=CRM-1001")
    frame = page.locator("iframe")
    embedded = page.frame_locator("iframe").locator("forewarn-flag")
    expect(embedded.locator("[role=alert]")).to_contain_text(TEXT["red"])
    closed = frame.bounding_box()["height"]
    embedded.get_by_role("button", name="View details").click()
    dialog = embedded.get_by_role("dialog")
    expect(dialog.get_by_role("button", name="Request access")).to_be_visible()
    page.wait_for_function(
        "(before) => document.querySelector('iframe').getBoundingClientRect().height > before",
        arg=closed,
    )
    inside = dialog.evaluate("(d) => d.scrollHeight")
    assert frame.bounding_box()["height"] >= inside
    # The form's last button is on the page, not cut off inside the frame.
    button = dialog.get_by_role("button", name="Request access")
    assert button.bounding_box()["y"] + button.bounding_box()["height"] <= (
        frame.bounding_box()["y"] + frame.bounding_box()["height"]
    )


def test_a_session_on_the_sidecars_site_opens_the_embed_page_without_a_launch_token(
    live, open_page
) -> None:
    site = live()
    seed(site, "red")
    page = open_page()
    # As after single sign-on in a window of its own (the Dynamics details window, or Canvas).
    page.goto(f"{site.sidecar}/embed?kind=customer&ref=CRM-404")
    status = page.evaluate(
        """async () => (await fetch('/auth/demo', {method: 'POST',
            headers: {'Content-Type': 'application/json'},
            body: JSON.stringify({user: 'u.sso', name: 'Sam Sso', roles: ['visiting_officer']})
        })).status"""
    )
    assert status == 200
    page.goto(f"{site.sidecar}/embed?kind=customer&ref=CRM-1")
    widget = page.locator("forewarn-flag")
    expect(widget.locator("[role=alert]")).to_contain_text(TEXT["red"])
    expect(widget.get_by_role("button", name="View details")).to_be_visible()
    assert widget.evaluate("(element) => element.dataset.accessToken") is None
    banner_calls = [s for s in site.recorder.seen if s.path.endswith("/banner")]
    assert banner_calls and all(s.cookie is None for s in banner_calls)
    no_axe_violations(page)


def test_the_embed_page_asks_again_for_a_host_that_starts_listening_late(live, open_page):
    site = live()
    seed(site, "amber")
    page = open_page()
    page.goto(f"{site.crm}/frame-host?kind=customer&ref=CRM-1&late=1")
    embedded = page.frame_locator("#embed").locator("forewarn-flag")
    expect(embedded.locator("[role=status]")).to_contain_text(TEXT["amber"])
