"""Dates and words as the GOV.UK style guide writes them: "23 December 2026", "3:05pm"."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from flask import Flask

from sidecar.runtime import current_runtime


def uk_date(value: date | datetime | str | None) -> str:
    """A date as people write it in the UK, without a leading zero: 3 March 2026."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
    if isinstance(value, datetime):
        value = _local(value)
    return f"{value.day} {value:%B %Y}"


def uk_datetime(value: datetime | str | None) -> str:
    """A moment in the council's time zone: 3 March 2026 at 3:05pm."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    local = _local(value)
    hour = local.hour % 12 or 12
    suffix = "am" if local.hour < 12 else "pm"
    return f"{local.day} {local:%B %Y} at {hour}:{local:%M}{suffix}"


def _local(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value
    return value.astimezone(ZoneInfo(current_runtime().settings.lookup.timezone))


def words(code: str | None) -> str:
    """A snake_case code read as words, for codes that have no catalogue label."""
    return (code or "").replace("_", " ")


def register_filters(app: Flask) -> None:
    app.add_template_filter(uk_date, "uk_date")
    app.add_template_filter(uk_datetime, "uk_datetime")
    app.add_template_filter(words, "words")
