"""A reconciliation computes statuses in batches: exactly what `crm_status` gives, one by one."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from sidecar.register.case_models import Appeal
from sidecar.register.models import Flag, Subject, SubjectLink
from sidecar.register.rules import State
from sidecar.register.status import crm_status, crm_statuses
from sidecar.settings import Settings
from sidecar.storage.database import Database, utcnow
from sidecar.sync.outbox import current_status, current_statuses

CUSTOMERS = 5
PROPERTIES = 3
CATEGORIES = ("verbal_hate_abuse", "threat_of_physical_abuse", "physical_violence", "pet_python")
RESTRICTIONS = ("time_limited_calls", "writing_only", "visits_in_pairs", "office_ban")
ACTIVATED = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)

restriction = st.fixed_dictionaries(
    {
        "code": st.sampled_from(RESTRICTIONS),
        "note": st.sampled_from([None, "", "10 minutes", " Tuesdays only "]),
        # Days from today that a time-limited restriction ends on: ended, last day, running.
        "ends_in": st.sampled_from([None, -30, -1, 0, 1, 90]),
    }
)
flag = st.fixed_dictionaries(
    {
        "on": st.integers(0, CUSTOMERS + PROPERTIES - 1),
        "level": st.sampled_from(["amber", "red"]),
        "state": st.sampled_from([s.value for s in State] + ["active"] * 4),
        "categories": st.lists(st.sampled_from(CATEGORIES), min_size=1, max_size=3, unique=True),
        "restrictions": st.lists(restriction, max_size=3),
        "review_due": st.none() | st.dates(date(2026, 6, 1), date(2028, 6, 1)),
        # Few distinct days, so two flags of one subject are often activated together.
        "activated_day": st.integers(0, 3),
        # None is a pending appeal; the others were decided.
        "appeals": st.lists(st.sampled_from([None, "upheld", "varied", "closed"]), max_size=2),
    }
)
register = st.fixed_dictionaries(
    {
        "links": st.sets(st.tuples(st.integers(0, CUSTOMERS - 1), st.integers(0, PROPERTIES - 1))),
        "flags": st.lists(flag, max_size=14),
        "versions": st.lists(st.integers(0, 50), min_size=CUSTOMERS + PROPERTIES),
        # Row ids in an order unrelated to the refs, as random ids are.
        "id_order": st.permutations(range(CUSTOMERS + PROPERTIES)),
    }
)


def a_flag(on: int, level: str, state: str = "active", **fields: Any) -> dict[str, Any]:
    return {
        "on": on,
        "level": level,
        "state": state,
        "categories": ["physical_violence"],
        "restrictions": [],
        "review_due": None,
        "activated_day": 0,
        "appeals": [],
    } | fields


# Every case at once: customers linked to properties, several flags at both levels on one
# subject, pending and decided appeals, restrictions ended and running, ended flags.
VARIED = {
    "links": {(0, 0), (1, 0), (2, 1), (4, 2)},
    "flags": [
        a_flag(0, "amber", categories=["verbal_hate_abuse", "physical_violence"]),
        a_flag(
            0,
            "red",
            categories=["threat_of_physical_abuse"],
            restrictions=[
                {"code": "time_limited_calls", "note": "10 minutes", "ends_in": 30},
                {"code": "writing_only", "note": None, "ends_in": -1},
            ],
            review_due=date(2027, 1, 5),
            activated_day=1,
            appeals=["upheld", None],
        ),
        a_flag(0, "amber", "withdrawn", categories=["pet_python"]),
        a_flag(
            1,
            "amber",
            categories=["verbal_hate_abuse"],
            review_due=date(2026, 12, 1),
            appeals=["varied"],
        ),
        a_flag(1, "red", "removed", appeals=["removed"]),
        a_flag(2, "red", "expired"),
        a_flag(3, "amber", "proposed"),
        a_flag(5, "amber", restrictions=[{"code": "office_ban", "note": "", "ends_in": 0}]),
        a_flag(6, "red", "rejected"),
        a_flag(7, "amber", appeals=[None]),
    ],
    "versions": [3, 1, 0, 2, 7, 4, 1, 9],
    "id_order": [7, 6, 5, 4, 3, 2, 1, 0],
}


def build(session: Session, spec: dict[str, Any]) -> list[Subject]:
    """Write the register `spec` describes; its subjects, customers first."""
    today = utcnow().date()
    refs = [("customer", f"CRM-{i}") for i in range(CUSTOMERS)]
    refs += [("property", f"10009000{i:04d}") for i in range(PROPERTIES)]
    subjects = [
        Subject(id=f"{n:032x}", kind=kind, ref=ref, status_version=version)
        for (kind, ref), n, version in zip(refs, spec["id_order"], spec["versions"], strict=False)
    ]
    session.add_all(subjects)
    session.flush()
    session.add_all(
        SubjectLink(customer_id=subjects[c].id, property_id=subjects[CUSTOMERS + p].id)
        for c, p in spec["links"]
    )
    for item in spec["flags"]:
        row = Flag(
            subject_id=subjects[item["on"]].id,
            state=item["state"],
            level=item["level"],
            categories=item["categories"],
            restrictions=[
                {
                    "code": r["code"],
                    "note": r["note"],
                    "ends_on": None
                    if r["ends_in"] is None
                    else (today + timedelta(days=r["ends_in"])).isoformat(),
                }
                for r in item["restrictions"]
            ],
            handling="",
            responsible_manager="u.manager",
            review_months=12,
            review_due=item["review_due"],
            proposed_by="u.case",
            activated_at=ACTIVATED + timedelta(days=item["activated_day"]),
        )
        session.add(row)
        session.flush()
        session.add_all(
            Appeal(
                flag_id=row.id,
                received_on=today,
                lodged_by="u.case",
                handling_manager="u.senior",
                outcome=outcome,
            )
            for outcome in item["appeals"]
        )
    session.flush()
    return subjects


@pytest.fixture
def database(settings: Settings) -> Iterator[Database]:
    database = Database(settings.database_url)
    yield database
    database.dispose()


@settings(
    max_examples=60,
    deadline=None,
    # Each example writes its register in a transaction it rolls back: nothing to reset.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(spec=register)
@example(spec=VARIED)
def test_batched_statuses_are_exactly_the_per_subject_ones(
    database: Database, settings: Settings, spec: dict[str, Any]
) -> None:
    with database.sessions() as session:
        try:
            subjects = build(session, spec)
            one_by_one = {s.id: crm_status(session, settings, s) for s in subjects}
            assert crm_statuses(session, settings, subjects) == one_by_one
            # Batches that split a property from its linked customers give the same.
            for size in (1, 3):
                for start in range(0, len(subjects), size):
                    batch = subjects[start : start + size]
                    assert crm_statuses(session, settings, batch) == {
                        s.id: one_by_one[s.id] for s in batch
                    }
        finally:
            session.rollback()


def without_time(status: Any) -> Any:
    return dataclasses.replace(status, updated_at=ACTIVATED)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(spec=register, batch_size=st.integers(1, 4))
@example(spec=VARIED, batch_size=2)
def test_reconciliation_covers_every_flagged_or_linked_subject_as_the_worker_would_send_it(
    database: Database, settings: Settings, spec: dict[str, Any], batch_size: int
) -> None:
    with database.sessions() as session:
        try:
            subjects = build(session, spec)
            flagged = {subjects[f["on"]].id for f in spec["flags"]}
            linked = {
                subjects[CUSTOMERS + p].id for c, p in spec["links"] if subjects[c].id in flagged
            }
            reconciled = list(current_statuses(session, settings, batch_size))
            assert [subject_id for subject_id, _ in reconciled] == sorted(flagged | linked)
            by_id = {s.id: s for s in subjects}
            for subject_id, status in reconciled:
                worker_sends = current_status(session, settings, by_id[subject_id])
                assert without_time(status) == without_time(worker_sends)
        finally:
            session.rollback()
