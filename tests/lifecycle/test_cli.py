"""The lifecycle's commands: legacy import, reviews due, expiry, purge, and demo data."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from sidecar.cli.main import cli
from sidecar.register import flags, notices
from sidecar.register.case_models import FlagEvent, Letter
from sidecar.register.context import ServiceContext
from sidecar.register.models import Flag, Subject
from sidecar.register.rules import FlagTerms, add_months
from sidecar.register.staff import Person
from sidecar.register.status import banner_flags, crm_status
from sidecar.storage.database import utcnow
from tests.conftest import CONFIG

HEADER = (
    "kind,ref,level,categories,restrictions,handling,reason,control_measures,"
    "responsible_manager,flagged_on\n"
)
GOOD = (
    'customer,CRM-7001,red,physical_violence,"visits_in_pairs;no_home_visits",,'
    "Punched a bailiff,Two officers,u.sm,2019-04-02\n"
    'property,000100023336956,amber,threat_of_animal_attack,"time_limited_calls=5 minutes",'
    "Dog at the gate,Loose dog,Ask for the dog to be shut away,u.sm,\n"
)
BAD = "customer,CRM-7002,red,shouting,,,Shouted,None,u.sm,\n"

CSM = Person("u.csm", "Cara Support", ("customer_support_manager",))
PANEL = (
    (CSM, "customer_support_manager"),
    (Person("u.sm", "Sam", ("senior_manager",)), "senior_manager"),
    (Person("u.hs", "Hal", ("hs_manager",)), "hs_manager"),
)


@pytest.fixture
def run(instance_dir: Path, database_url: str):
    def invoke(*args: str) -> Result:
        return CliRunner().invoke(
            cli,
            ["--instance", str(instance_dir), *args],
            env={"FOREWARN_CONFIG": str(CONFIG), "FOREWARN_DATABASE_URL": database_url},
        )

    return invoke


def _flags(app) -> list[Flag]:
    with app.extensions["forewarn"].database.transaction() as session:
        return list(session.scalars(select(Flag)))


def test_import_dry_run_lists_each_row_and_writes_nothing(app, run, tmp_path: Path) -> None:
    path = tmp_path / "register.csv"
    path.write_text(HEADER + GOOD)
    result = run("import", str(path))
    assert result.exit_code == 0, result.output
    assert "line 2: import: customer CRM-7001: red (physical_violence)" in result.output
    assert "line 3: import: property 100023336956" in result.output
    assert "nothing written" in result.output
    assert _flags(app) == []


def test_bad_rows_are_reported_by_line_and_nothing_partial_is_written(
    app, run, tmp_path: Path
) -> None:
    path = tmp_path / "register.csv"
    path.write_text(HEADER + GOOD + BAD)
    result = run("import", str(path), "--commit")
    assert result.exit_code == 2
    assert "line 4: error: unknown category 'shouting'" in result.output
    assert "nothing was written" in result.output
    assert _flags(app) == []
    missing = tmp_path / "missing.csv"
    missing.write_text("kind,ref\ncustomer,CRM-1\n")
    result = run("import", str(missing))
    assert result.exit_code == 2
    assert "missing column(s) level" in result.output


def test_commit_imports_active_flags_due_for_an_early_review(app, run, tmp_path: Path) -> None:
    path = tmp_path / "register.csv"
    path.write_text(HEADER + GOOD)
    result = run("import", str(path), "--commit")
    assert result.exit_code == 0, result.output
    assert "imported 2 flag(s)" in result.output
    imported = _flags(app)
    assert {f.state for f in imported} == {"active"}
    assert {f.provenance for f in imported} == {"imported"}
    today = utcnow().date()
    assert all(today < f.review_due <= add_months(today, 3) for f in imported)
    state = app.extensions["forewarn"]
    with state.database.transaction() as session:
        prop = session.scalars(select(Subject).where(Subject.ref == "100023336956")).one()
        banner = banner_flags(session, state.settings, prop)
        events = session.scalars(select(FlagEvent.why)).all()
    assert banner[0]["restrictions"][0]["label"] == "Time-limited calls: 5 minutes"
    assert any("register.csv line 2" in why for why in events)
    again = run("import", str(path), "--commit")
    assert "imported 0 flag(s); skipped 2" in again.output


def _active_flag(app, ref: str, now, **terms) -> str:
    state = app.extensions["forewarn"]
    with state.database.transaction() as session:
        ctx = ServiceContext(session, state.settings, state.keyring, CSM).at(now)
        flag = flags.propose(
            ctx,
            flags.Proposal(
                kind="customer",
                ref=ref,
                terms=FlagTerms("amber", ("persistent_complainer",), **terms),
                reason="Called 300 times about a closed complaint",
                control_measures="Writing only",
                responsible_manager="u.sm",
            ),
        )
        for member, role in PANEL:
            flags.decide_panel(
                ctx.acting_as(member),
                flag.id,
                role,
                "approve",
                flags.Assessment("low", "daily", "fair", "none"),
            )
        notices.issue_notice(ctx, flag.id, "letter")
        return flag.id


def test_reviews_due_lists_overdue_flags(app, run) -> None:
    assert "no review due within 30 days" in run("reviews", "due").output
    flag_id = _active_flag(app, "CRM-7101", utcnow() - timedelta(days=380))
    result = run("reviews", "due")
    assert result.exit_code == 0
    assert "OVERDUE" in result.output
    assert f"flag {flag_id}" in result.output
    assert "days overdue" in result.output


def test_expiry_and_purge_keep_the_decision_record(app, run) -> None:
    long_ago = utcnow() - timedelta(days=1200)
    flag_id = _active_flag(app, "CRM-7201", long_ago, ends_on=long_ago.date() + timedelta(days=30))
    result = run("flags", "expire")
    assert result.exit_code == 0
    assert f"expired flag {flag_id}" in result.output
    state = app.extensions["forewarn"]
    with state.database.transaction() as session:
        flag = session.get(Flag, flag_id)
        assert flag.state == "expired"
        # Pretend it ended long ago: the purge runs on ended_at.
        flag.ended_at = long_ago + timedelta(days=31)
        assert crm_status(session, state.settings, flag.subject)["level"] == "none"
    result = run("flags", "purge")
    assert f"purged confidential details of flag {flag_id}" in result.output
    with state.database.transaction() as session:
        flag = session.get(Flag, flag_id)
        assert flag.reason is None and flag.control_measures is None
        assert flag.purged_at is not None
        assert session.scalars(select(Letter.body).where(Letter.flag_id == flag_id)).all() == [None]
        actions = session.scalars(
            select(FlagEvent.action).where(FlagEvent.flag_id == flag_id).order_by(FlagEvent.seq)
        ).all()
    assert actions[0] == "proposed" and actions[-2:] == ["expired", "purged"]
    assert "0 flag(s) purged" in run("flags", "purge").output


def test_demo_data_goes_through_the_lifecycle(app, run) -> None:
    first = run("init", "--demo")
    assert first.exit_code == 0, first.output
    assert "demo data ready" in first.output
    assert run("init", "--demo").exit_code == 0
    state = app.extensions["forewarn"]
    with state.database.transaction() as session:

        def banner(kind: str, ref: str) -> list[dict]:
            subject = session.scalars(
                select(Subject).where(Subject.kind == kind, Subject.ref == ref)
            ).one()
            return banner_flags(session, state.settings, subject)

        red = banner("customer", "CRM-1001")
        amber = banner("customer", "CRM-1002")
        appealed = banner("customer", "CRM-1003")
        assert banner("customer", "CRM-1004") == []
        prop = session.scalars(select(Subject).where(Subject.ref == "100023336956")).one()
        prop_status = crm_status(session, state.settings, prop)
        history = session.scalars(select(FlagEvent.action)).all()
    assert len(red) == 1 and red[0]["level"] == "red"
    assert red[0]["categories"] == ["physical_violence"]
    assert [r["code"] for r in red[0]["restrictions"]] == ["visits_in_pairs", "no_home_visits"]
    assert amber[0]["categories"] == ["persistent_complainer"]
    assert {"code": "time_limited_calls", "label": "Time-limited calls: 10 minutes"} in amber[0][
        "restrictions"
    ]
    assert appealed[0]["appeal"] == {"pending": True, "handling_manager": "Sam Patel"}
    assert prop_status["level"] == "red"
    assert history.count("panel_approve") == 9
