"""What each kind of notification says: the kind of event, when, and a link to the console.

A message never carries a confidential text (a reason, a narrative, an alert's detail, a
grant's reason text): only a flag's reference, who did what and when, catalogue labels and
the console page that shows the rest to those allowed to read it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sidecar.notify.models import Notification
from sidecar.settings import Settings

TITLES = {
    "details_opened": "A flag you manage was opened",
    "privacy_alert": "A privacy alert was raised",
    "awaiting_vote": "A proposed flag awaits your panel decision",
    "review_due": "A flag's review is coming due",
    "appeal_window": "An appeal window is closing",
    "appeal_assigned": "An appeal was assigned to you",
    "appeal_to_decide": "An appeal awaits a decision",
}

ALERT_KINDS = {
    "grant_volume": "more access grants by one person in a day than expected",
    "reason_other": "an access grant giving the reason 'other'",
    "outside_team": "details read outside the reader's teams",
    "refused_sign_ins": "many refused sign-ins for one account",
}


@dataclass(frozen=True)
class Message:
    """One message to one person: what the delivery services send."""

    kind: str
    recipient: str
    subject: str
    body: str
    link: str


def _when(settings: Settings, value: str) -> str:
    local = datetime.fromisoformat(value).astimezone(ZoneInfo(settings.lookup.timezone))
    hour = local.hour % 12 or 12
    return f"{local.day} {local:%B %Y} at {hour}:{local:%M}{'am' if local.hour < 12 else 'pm'}"


def _day(value: str) -> str:
    day = date.fromisoformat(value)
    return f"{day.day} {day:%B %Y}"


def _line(settings: Settings, row: Notification) -> str:
    facts = row.facts
    if row.kind == "details_opened":
        return (
            f"Flag {facts['flag_ref']}: details opened by {facts['reader']} on "
            f"{_when(settings, facts['at'])}, for: {facts['reason']}."
        )
    if row.kind == "privacy_alert":
        kind = ALERT_KINDS.get(facts["alert_kind"], facts["alert_kind"])
        return f"A privacy alert was raised on {_when(settings, facts['at'])}: {kind}."
    if row.kind == "awaiting_vote":
        return (
            f"Flag {facts['flag_ref']} was proposed on {_when(settings, facts['at'])} and awaits "
            f"the panel's {facts['role']}."
        )
    if row.kind == "review_due":
        return f"Flag {facts['flag_ref']} is due for review on {_day(facts['due'])}."
    if row.kind == "appeal_window":
        return f"The appeal window of flag {facts['flag_ref']} closes on {_day(facts['closes'])}."
    if row.kind == "appeal_to_decide":
        by = f"a {facts['role']}" + (" with no part in the case" if facts["uninvolved"] else "")
        return (
            f"An appeal against flag {facts['flag_ref']}, received on "
            f"{_day(facts['received'])}, awaits a decision by {by}."
        )
    return (
        f"An appeal against flag {facts['flag_ref']}, received on {_day(facts['received'])}, "
        "was assigned to you to handle."
    )


def compose(settings: Settings, rows: Sequence[Notification]) -> Message:
    """The one message for `rows` (one row, or a digest's rows of one kind and recipient)."""
    first = rows[0]
    lines = [_line(settings, row) for row in rows]
    link = settings.console_url + (first.link if len(rows) == 1 else digest_link(first.kind))
    subject = (
        TITLES[first.kind] if len(rows) == 1 else f"Flags you manage were opened {len(rows)} times"
    )
    body = "\n".join(
        [
            *lines,
            "",
            f"See it in Forewarn: {link}",
            "This message gives no details of the case: sign in to Forewarn to read them.",
        ]
    )
    return Message(first.kind, first.recipient, subject, body, link)


def digest_link(kind: str) -> str:
    return {"details_opened": "/console/subjects"}.get(kind, "/")
