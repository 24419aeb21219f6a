"""Keyboard-only steps for the console's browser tests: Tab to a box, type, Space or Enter.

Every step is what a person without a mouse does; `accessible` (axe-core and 320px reflow)
is called by the tests on each page and error state they reach.
"""

from __future__ import annotations

from typing import Any

import pytest

expect = pytest.importorskip("playwright.sync_api").expect


def tab_to(page: Any, selector: str, presses: int = 60) -> None:
    """Move the keyboard focus with Tab (and arrow keys within a radio group) to `selector`."""
    for _ in range(presses):
        if page.evaluate("(s) => document.activeElement?.matches(s) ?? false", selector):
            return
        name = page.evaluate("() => document.activeElement?.name || ''")
        kind = page.evaluate("() => document.activeElement?.type || ''")
        target = page.locator(selector)
        if kind == "radio" and target.count() and target.first.get_attribute("name") == name:
            page.keyboard.press("ArrowDown")
            continue
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {selector}")


def submit(page: Any) -> None:
    """Press Enter on what has the focus, and wait for the page it leads to."""
    with page.expect_navigation():
        page.keyboard.press("Enter")


LONG_PAGE = 200
"""Tab presses allowed to reach a box on the longest pages (the proposal form)."""


def switch_to(page: Any, persona: str) -> None:
    """Sign out (if signed in) and sign in again as `persona` with the demo switcher."""
    if page.locator("button.console-link-button").count():
        tab_to(page, "button.console-link-button")
        submit(page)
    expect(page.get_by_role("heading", name="Sign in to Forewarn")).to_be_visible()
    choose(page, f'input[value="{persona}"]')
    press(page, "button.govuk-button")
    expect(page.get_by_role("heading", name="Your work")).to_be_visible()


def type_into(page: Any, selector: str, text: str) -> None:
    """Replace what the box holds with `text` (a newline in a text area is Enter)."""
    tab_to(page, selector, LONG_PAGE)
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.type(text)


def type_date(page: Any, field: str, day: Any) -> None:
    """A date in the GOV.UK date input's three boxes."""
    for box, value in (("day", day.day), ("month", day.month), ("year", day.year)):
        type_into(page, f"input#{field}-{box}", str(value))


def choose(page: Any, selector: str) -> None:
    """Select a radio (arrow keys within its group) or tick a checkbox (Space)."""
    tab_to(page, selector, LONG_PAGE)
    if not page.evaluate("() => document.activeElement.checked"):
        page.keyboard.press("Space")


def press(page: Any, selector: str) -> None:
    """Enter on a link or button, and wait for the page it leads to."""
    tab_to(page, selector, LONG_PAGE)
    submit(page)


def error_summary_shown(page: Any, *messages: str) -> None:
    """The GOV.UK error summary has the focus and lists `messages`."""
    summary = page.locator(".govuk-error-summary")
    expect(summary).to_be_focused()
    for message in messages:
        expect(summary).to_contain_text(message)


def banner_says(page: Any, text: str) -> None:
    expect(page.locator(".govuk-notification-banner--success")).to_contain_text(text)


def find_subject(page: Any, ref: str) -> None:
    """From any page: the search, by reference, to the customer's page."""
    press(page, "a[href='/console/subjects']")
    type_into(page, "input#ref", ref)
    submit(page)
    expect(page.get_by_role("heading", name=ref)).to_be_visible()


def card_action(page: Any, path_end: str) -> None:
    """Follow the action link on the subject page's flag card whose address ends so
    ("/withdraw", "/review", ...): tab_to matches plain CSS, in the page."""
    press(page, f".govuk-summary-card__action a[href$='{path_end}']")
