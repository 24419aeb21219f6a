"""The privacy officer's and IT's pages in real Chromium: keyboard only, axe-core, 320px."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sidecar import create_app
from sidecar.identity.launch import mint_launch_token
from sidecar.storage.keys import KeyFiles
from tests.connectors.fakes.webhook import ROTATED_SECRET, FakeWebhookReceiver
from tests.console import test_console_browser as shared
from tests.console.browser_steps import error_summary_shown
from tests.console.test_console_browser import accessible, expect, submit, tab_to
from tests.lookup.browser_support import CHROMIUM, served
from tests.sync.test_sync import change_flag, worker

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason="/usr/bin/chromium is absent: install Debian's chromium package (.ci/run does)",
    ),
]

CONNECTOR = "crm_webhook"

# The console suite's own browser, keyboard sign-in and once-on-SQLite rule.
browser = shared.browser
person = shared.person
_once_on_sqlite = shared._once_on_sqlite


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeWebhookReceiver]:
    with FakeWebhookReceiver.start() as fake:
        for name, value in fake.environ.items():
            monkeypatch.setenv(name, value)
        yield fake


@pytest.fixture
def live(make_settings: Callable[..., Any], receiver: FakeWebhookReceiver) -> Iterator[Any]:
    """The sidecar on a loopback port, a demo instance with one CRM connector."""
    settings = make_settings(connectors={CONNECTOR: {"kind": "webhook", **receiver.settings()}})
    app = create_app(settings)
    with served(app) as url:
        app.config["CONSOLE_URL"] = url
        yield app


@pytest.fixture
def console(live: Any) -> str:
    return str(live.config["CONSOLE_URL"])


def _grant_for_other_reason(app: Any, ref: str) -> None:
    """A visiting officer's access grant giving reason 'other', which raises an alert."""
    settings = app.extensions["forewarn"].settings
    key = KeyFiles.of(settings.instance_dir).launch_demo_key.read_bytes()
    token = mint_launch_token(
        key,
        settings.deployment.public_url,
        "demo.visitor",
        "Dee Visiting Officer",
        ["visiting_officer"],
        300,
    )
    client = app.test_client()
    bearer = client.post("/auth/launch", json={"token": token}).get_json()["access_token"]
    reply = client.post(
        f"/api/v1/subjects/customer/{ref}/access-grants",
        json={"reason_code": "other", "reason_text": "Checking a neighbour's complaint"},
        headers={"Authorization": f"Bearer {bearer}"},
    )
    assert reply.status_code == 201, reply.get_json()


def test_a_privacy_officer_searches_verifies_closes_an_alert_and_exports(
    live: Any, person: Any, console: str
) -> None:
    _grant_for_other_reason(live, "CRM-6001")
    page = person("demo.auditor")
    expect(page.get_by_role("link", name="Privacy alerts to review: 1")).to_be_visible()
    accessible(page, "home-auditor")

    tab_to(page, "a[href='/console/access-log']")
    submit(page)
    expect(page.get_by_role("heading", name="Access log")).to_be_visible()
    accessible(page, "access-log")
    tab_to(page, "input#action")
    page.keyboard.type("Not An Action")
    tab_to(page, "button.govuk-button")
    submit(page)
    expect(page.locator(".govuk-error-summary")).to_be_focused()
    accessible(page, "access-log-error")
    tab_to(page, "input#action")
    page.keyboard.press("Control+A")
    page.keyboard.type("access_grant.create")
    tab_to(page, "button.govuk-button")
    submit(page)
    expect(page.get_by_role("cell", name="Customer CRM-6001")).to_be_visible()
    accessible(page, "access-log-filtered")

    tab_to(page, "a[href='/console/access-log/verify']")
    submit(page)
    accessible(page, "verify")
    tab_to(page, "button.govuk-button")
    submit(page)
    expect(page.get_by_role("heading", name="The access log is intact")).to_be_visible()
    accessible(page, "verify-result")

    page.goto(console + "/")
    tab_to(page, "a[href='/console/privacy-alerts']")
    submit(page)
    accessible(page, "alerts")
    tab_to(page, ".console-queue a")
    submit(page)
    accessible(page, "alert")
    tab_to(page, "button.govuk-button")
    submit(page)
    expect(page.locator(".govuk-error-summary")).to_be_focused()
    accessible(page, "alert-error")
    tab_to(page, "textarea#note")
    page.keyboard.type("The officer's manager confirmed the visit was booked.")
    tab_to(page, "button.govuk-button")
    submit(page)
    expect(page.locator(".govuk-notification-banner--success")).to_contain_text(
        "The alert is closed"
    )
    accessible(page, "alerts-empty")

    # The person's own copy is the privacy officer's to make, one request at a time.
    page = person("demo.privacy")
    tab_to(page, "a[href='/console/subject-access']")
    submit(page)
    accessible(page, "sar")
    tab_to(page, "input#ref")
    page.keyboard.type("CRM 6001")
    submit(page)
    expect(page.locator(".govuk-error-summary")).to_be_focused()
    accessible(page, "sar-error")
    tab_to(page, "input#ref")
    page.keyboard.press("Control+A")
    page.keyboard.type("CRM-6001")
    tab_to(page, "input#request_ref")
    page.keyboard.type("SAR-2026-19")
    submit(page)
    expect(page.get_by_role("heading", name="Customer CRM-6001")).to_be_visible()
    expect(page.get_by_role("cell", name="access_grant.create")).to_be_visible()
    accessible(page, "sar-export")
    with page.expect_download() as download:
        tab_to(page, "a[href*='subject-access.json']")
        page.keyboard.press("Enter")
    assert download.value.suggested_filename == "subject-access-customer-CRM-6001.json"


def test_it_requeues_a_dead_letter_and_reads_system_status(
    live: Any, person: Any, receiver: FakeWebhookReceiver, console: str
) -> None:
    receiver.seed("customer", "CRM-6002")
    secret, receiver.secret = receiver.secret, ROTATED_SECRET
    change_flag(live, "CRM-6002", "red")
    worker(live).run_once()
    receiver.secret = secret

    page = person("demo.admin")
    expect(page.get_by_role("link", name="Dead letters: 1")).to_be_visible()
    accessible(page, "home-admin")
    tab_to(page, ".console-queues a")
    submit(page)
    expect(page.get_by_role("cell", name="Customer CRM-6002")).to_be_visible()
    accessible(page, "sync-health")
    tab_to(page, "form[action$='/requeue'] button")
    submit(page)
    expect(page.locator(".govuk-notification-banner--success")).to_contain_text(
        "1 status for crm_webhook will be sent again on the next pass."
    )
    accessible(page, "sync-health-requeued")
    worker(live).run_once()
    assert receiver.status_of("customer", "CRM-6002")["level"] == "red"

    tab_to(page, "a[href='/console/system']")
    submit(page)
    expect(page.get_by_role("heading", name="System status")).to_be_visible()
    accessible(page, "system")

    # A leaver's sessions, ended by keyboard.
    leaver = person("demo.officer")
    page.goto(console + "/")
    tab_to(page, "a[href='/console/sessions']")
    submit(page)
    accessible(page, "sessions-find")
    tab_to(page, "input#user")
    submit(page)
    error_summary_shown(page, "Enter the member of staff's user id")
    accessible(page, "sessions-find-error")
    tab_to(page, "input#user")
    page.keyboard.type("demo.officer")
    submit(page)
    expect(page.get_by_role("heading", name="demo.officer: 1 session running")).to_be_visible()
    accessible(page, "sessions")

    # Ending them with no reason and no user id ends nothing; each of the summary's links
    # leads to the box of the form that was sent, not to the find form's.
    tab_to(page, "input#end-user")
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    tab_to(page, "form[action$='/sessions/end'] button")
    submit(page)
    error_summary_shown(
        page, "Enter the member of staff's user id", "Say why you are ending their sessions"
    )
    accessible(page, "sessions-end-error")
    tab_to(page, ".govuk-error-summary a[href='#end-user']")
    page.keyboard.press("Enter")
    expect(page.locator("form[action$='/sessions/end'] input[name='user']")).to_be_focused()
    page.keyboard.type("demo.officer")
    tab_to(page, "textarea#reason")
    page.keyboard.type("Left the council on Friday.")
    tab_to(page, "form[action$='/sessions/end'] button")
    submit(page)
    expect(page.locator(".govuk-notification-banner--success")).to_contain_text(
        "1 session of demo.officer ended"
    )
    accessible(page, "sessions-ended")
    leaver.reload()
    expect(leaver.get_by_role("heading", name="Sign in to Forewarn")).to_be_visible()
