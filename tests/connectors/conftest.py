"""Shared fixtures for the connector tests."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

# The fakes are imported as tests.connectors.fakes (the sidecar's tests reuse them), which
# needs the repository root on sys.path whichever way pytest was started.
ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from connectors.base import FlagStatus  # noqa: E402

# Strings that must never reach a CRM: the service's tests put them in reasons and
# narratives; here they guard against a connector inventing a way to send more.
CONFIDENTIAL_SENTINELS = (
    "SENTINEL-REASON-7f3a",
    "SENTINEL-NARRATIVE-91bc",
    "SENTINEL-WITNESS-5d20",
)


def make_status(
    ref: str = "C-1",
    kind: str = "customer",
    level: str = "amber",
    version: int = 1,
    **changes: object,
) -> FlagStatus:
    """A FlagStatus with plausible defaults."""
    values: dict[str, object] = {
        "subject_kind": kind,
        "subject_ref": ref,
        "record_key": ref,
        "level": level,
        "categories": ("Verbal/Hate abuse",) if level != "none" else (),
        "restrictions": ("Writing only", "Calls limited to 10 minutes") if level != "none" else (),
        "review_due": date(2026, 3, 31) if level != "none" else None,
        "appeal_pending": False,
        "version": version,
        "updated_at": datetime(2025, 11, 20, 9, 30, tzinfo=UTC),
    }
    values.update(changes)
    return FlagStatus(**values)  # type: ignore[arg-type]


def expected_view(status: FlagStatus) -> dict[str, object]:
    """What a fake's status_of() should return once `status` was delivered."""
    document = status.as_document()
    return {
        key: document[key]
        for key in (
            "level",
            "categories",
            "restrictions",
            "review_due",
            "appeal_pending",
            "version",
            "updated_at",
        )
    }


@pytest.fixture
def status_factory():
    return make_status
