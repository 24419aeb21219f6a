"""`forewarn notifications` and the worker's pass: notifications need no CRM connector."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from sidecar.cli.main import cli
from tests.conftest import CONFIG
from tests.notify.conftest import outbox
from tests.notify.fakes import SmtpRelay

pytestmark = pytest.mark.parametrize("delivery", ["smtp"], indirect=True)


def _config(tmp_path: Path, relay: SmtpRelay) -> Path:
    """The default settings file, delivering by SMTP to the test's relay."""
    text = CONFIG.read_text(encoding="utf-8")
    for default, value in (
        ('delivery = ""', 'delivery = "smtp"'),
        ('details_digest = "daily"', 'details_digest = "immediately"'),
        ('address_domain = ""', 'address_domain = "council.example"'),
        ('host = "localhost"', 'host = "127.0.0.1"'),
        ("port = 25", f"port = {relay.port}"),
        ('from_address = ""', 'from_address = "forewarn@council.example"'),
        ("starttls = true", "starttls = false"),
        ("appeal_window_lead_days = 3", "appeal_window_lead_days = 30"),
    ):
        assert text.count(default) == 1, default
        text = text.replace(default, value)
    path = tmp_path / "forewarn.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def run(instance_dir: Path, database_url: str, tmp_path: Path, backend: SmtpRelay):
    config = _config(tmp_path, backend)

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(
            cli,
            ["--instance", str(instance_dir), *args],
            env={"FOREWARN_CONFIG": str(config), "FOREWARN_DATABASE_URL": database_url},
        )

    return invoke


def test_one_pass_of_the_worker_sends_the_notifications_without_a_connector(
    app, cases, run, backend
) -> None:
    cases.propose()
    result = run("sync", "run")
    assert result.exit_code == 0, result.output
    assert "notifications: delivered 3, retrying 0, not found 0, dead 0" in result.output
    assert sorted(str(m["To"]) for m in backend.messages) == [
        "u.csm@council.example",
        "u.hs@council.example",
        "u.sm@council.example",
    ]
    status = run("notifications", "status")
    assert status.output.strip() == "pending 0, retrying 0, dead 0, sent 3"


def test_failed_notifications_are_listed_with_their_reason_and_requeued(
    app, cases, run, backend
) -> None:
    backend.refuse.add("u.hs@council.example")
    cases.propose()
    run("sync", "run")
    status = run("notifications", "status")
    assert "dead 1" in status.output
    assert "dead awaiting_vote to u.hs: 1 attempts: SMTP refused it: 550" in status.output
    backend.refuse.clear()
    assert run("notifications", "requeue").output.strip() == "requeued 1 notifications"
    assert "delivered 1" in run("sync", "run").output
    assert {row.state for row in outbox(app)} == {"sent"}


def test_the_due_scan_tells_each_event_once(app, cases, run) -> None:
    cases.notified()  # its appeal window closes within the 30 days' lead
    assert run("notifications", "due").output.strip() == (
        "queued 0 review reminders, 1 appeal window reminders"
    )
    assert run("notifications", "due").output.strip() == (
        "queued 0 review reminders, 0 appeal window reminders"
    )
