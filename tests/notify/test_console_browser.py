"""The notifications page in real Chromium: keyboard only, axe-core, 320px."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sidecar import create_app
from sidecar.settings import Settings
from tests.console import test_console_browser as shared
from tests.console.test_console_browser import accessible, expect, submit, tab_to
from tests.console.test_oversight_browser import _grant_for_other_reason
from tests.lookup.browser_support import CHROMIUM, served
from tests.notify.conftest import send
from tests.notify.test_console import WRONG_KEY

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason="/usr/bin/chromium is absent: install Debian's chromium package (.ci/run does)",
    ),
]

browser = shared.browser
person = shared.person
_once_on_sqlite = shared._once_on_sqlite


@pytest.fixture
def live(settings: Settings) -> Iterator[Any]:
    """The sidecar on a loopback port, notifying through the fake GOV.UK Notify."""
    app = create_app(settings)
    with served(app) as url:
        app.config["CONSOLE_URL"] = url
        yield app


@pytest.fixture
def console(live: Any) -> str:
    return str(live.config["CONSOLE_URL"])


def test_it_reads_the_failed_notifications_and_requeues_them_by_keyboard(
    live: Any, person: Any
) -> None:
    person("demo.auditor")
    _grant_for_other_reason(live, "CRM-6101")
    send(live, environ=WRONG_KEY)
    send(live)  # nothing left to send: the failed one waits for a requeue

    page = person("demo.admin")
    tab_to(page, "a[href='/console/notifications']")
    submit(page)
    expect(page.get_by_role("heading", name="Notifications", exact=True)).to_be_visible()
    expect(page.get_by_role("cell", name="A privacy alert was raised")).to_be_visible()
    accessible(page, "notifications")
    tab_to(page, "form[action$='/notifications/requeue'] button")
    submit(page)
    expect(page.locator(".govuk-notification-banner--success")).to_contain_text(
        "1 notification will be sent again on the worker's next pass."
    )
    accessible(page, "notifications-requeued")
