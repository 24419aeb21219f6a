"""Input models shared by several case-management resources: subjects and flag terms."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from sidecar.api.endpoint import Input
from sidecar.register.flags import TermsChange
from sidecar.register.references import REF_PATTERN, normalise_ref
from sidecar.register.rules import Invalid, Restriction

EARLIEST_DAY = date(1900, 1, 1)
LATEST_DAY = date(9998, 12, 31)
"""Dates the register can reckon with: a day either side of them still exists."""


def _day_in_range(value: date) -> date:
    if not EARLIEST_DAY <= value <= LATEST_DAY:
        raise ValueError(f"must be between {EARLIEST_DAY} and {LATEST_DAY}")
    return value


def _moment_in_range(value: datetime) -> datetime:
    try:
        day = value.astimezone(UTC).date() if value.tzinfo is not None else value.date()
    except OverflowError:
        day = date.min
    _day_in_range(day)
    return value


_YEARS = r"(19[0-9]{2}|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])"
"""The years from EARLIEST_DAY to LATEST_DAY, as the document states them."""
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _written(kind: type, whole: bool, message: str) -> Callable[[Any], Any]:
    """A check that a value arrived as text starting YYYY-MM-DD (the whole of it for a day).

    Pydantic would also read a number as seconds since 1970 ("0" is 1 January 1970).
    """

    def check(value: Any) -> Any:
        if isinstance(value, kind):
            return value
        if isinstance(value, str):
            found = _ISO_DAY.fullmatch(value) if whole else _ISO_DAY.match(value)
            if found:
                return value
        raise ValueError(message)

    return check


Day = Annotated[
    date,
    BeforeValidator(_written(date, True, "must be a date written YYYY-MM-DD")),
    AfterValidator(_day_in_range),
    WithJsonSchema({"type": "string", "format": "date", "pattern": f"^{_YEARS}-"}),
]
"""A calendar date within the years the register can hold."""
Moment = Annotated[
    datetime,
    BeforeValidator(
        _written(datetime, False, "must be a date-time written YYYY-MM-DDTHH:MM:SS with its offset")
    ),
    AfterValidator(_moment_in_range),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": f"^{_YEARS}-"}),
]
"""A date-time within the years the register can hold (in UTC as in its own zone)."""


def canonical_ref(value: str | None, info: ValidationInfo) -> str | None:
    """A model's `ref` in the register's form, given the model's `kind` (declared before it)."""
    kind = info.data.get("kind")
    if value is None or kind is None:
        return value
    try:
        return normalise_ref(kind, value)
    except Invalid as exc:
        raise ValueError(exc.message) from None


REF_FIELD = {"min_length": 1, "json_schema_extra": {"pattern": REF_PATTERN}}
"""A subject reference's declared form (its pattern bounds the length but for the whitespace
around it, which is dropped); `canonical_ref` checks the rest."""


class SubjectIn(Input):
    kind: Literal["customer", "property"]
    ref: str = Field(**REF_FIELD)

    _canonical_ref = field_validator("ref")(canonical_ref)


Adjustment = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
ADJUSTMENTS_DESCRIPTION = (
    "reasonable adjustments staff must make, each an instruction shown on the banner and sent "
    "to the CRM (e.g. 'Contact by letter in large print'); the detail behind them goes in "
    "reasonable_adjustments"
)


class RestrictionIn(Input):
    code: str
    note: str = Field("", max_length=200, description="e.g. '10 minutes' for time_limited_calls")
    ends_on: Day | None = None


def restrictions(items: list[str | RestrictionIn] | None) -> tuple[Restriction, ...]:
    """Restrictions as given: a bare code, or a code with its note and end date."""
    found = []
    for item in items or []:
        if isinstance(item, str):
            found.append(Restriction(item))
        else:
            found.append(Restriction(item.code, item.note, item.ends_on))
    return tuple(found)


class TermsIn(Input):
    """A variation of an active flag's terms, as an appeal or a review may make."""

    level: str | None = None
    categories: list[str] | None = Field(None, json_schema_extra={"uniqueItems": True})
    restrictions: list[str | RestrictionIn] | None = None
    handling: str | None = Field(None, max_length=1000)
    ends_on: Day | None = None
    adjustments: list[Adjustment] | None = Field(
        None, max_length=10, description=ADJUSTMENTS_DESCRIPTION
    )

    def change(self) -> TermsChange:
        given = self.model_fields_set & {
            "level",
            "categories",
            "restrictions",
            "handling",
            "ends_on",
            "adjustments",
        }
        return TermsChange(
            level=self.level,
            categories=tuple(self.categories) if self.categories is not None else None,
            restrictions=restrictions(self.restrictions) if self.restrictions is not None else None,
            handling=self.handling or "",
            ends_on=self.ends_on,
            adjustments=tuple(self.adjustments) if self.adjustments is not None else None,
            changed=frozenset(given),
        )
