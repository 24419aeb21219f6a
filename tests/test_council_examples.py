"""One settings file per council in config/examples/, each accepted by `forewarn init`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sidecar.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "config" / "examples"
COUNCILS = ("york-2015", "york-2016", "eastleigh", "workington", "cabinet-report")


def forewarn(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sidecar.cli", *args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        cwd=cwd,
        timeout=120,
        check=False,
    )


def test_there_is_a_settings_file_for_each_council() -> None:
    assert sorted(path.stem for path in EXAMPLES.glob("*.toml")) == sorted(COUNCILS)


@pytest.mark.parametrize("council", COUNCILS)
def test_forewarn_init_accepts_the_council_s_settings(council: str, tmp_path: Path) -> None:
    # Run from elsewhere: the file's own paths (the defaults it extends, the letters) are
    # taken from where it is, not from where Forewarn runs.
    config = EXAMPLES / f"{council}.toml"
    instance = tmp_path / "instance"
    result = forewarn("--instance", str(instance), "--config", str(config), "init", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "schema is current" in result.stdout
    settings = load_settings(config, instance_dir=instance, environ={})
    assert (settings.letters_path / "decision.html").exists()


def test_an_inconsistent_council_file_stops_init_naming_the_setting(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text(
        f'extends = "{EXAMPLES / "workington.toml"}"\n[panel]\napprovals_needed = 4\n',
        encoding="utf-8",
    )
    result = forewarn("--instance", str(tmp_path / "i"), "--config", str(broken), "init", cwd=ROOT)
    assert result.returncode == 2
    assert "extends another file" in result.stderr
    flat = tmp_path / "flat.toml"
    flat.write_text(
        (EXAMPLES / "workington.toml")
        .read_text(encoding="utf-8")
        .replace('extends = "../forewarn.toml"', f'extends = "{ROOT / "config" / "forewarn.toml"}"')
        .replace("approvals_needed = 2", "approvals_needed = 4"),
        encoding="utf-8",
    )
    result = forewarn("--instance", str(tmp_path / "i"), "--config", str(flat), "init", cwd=ROOT)
    assert result.returncode == 2
    assert "setting 'panel.approvals_needed': 4 approvals from 3 seats" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("council", "days"), [("eastleigh", 21), ("workington", 14), ("york-2016", 21)]
)
def test_each_council_s_appeal_window(council: str, days: int, tmp_path: Path) -> None:
    settings = load_settings(EXAMPLES / f"{council}.toml", instance_dir=tmp_path, environ={})
    assert settings.policy.appeal_window_days == days


def test_york_records_the_b_safe_reference_and_workington_refers_to_the_police(tmp_path) -> None:
    york = load_settings(EXAMPLES / "york-2015.toml", instance_dir=tmp_path, environ={})
    assert york.catalogue.external_references == {"b_safe": "B-Safe"}
    york_actions = load_settings(EXAMPLES / "york-2016.toml", instance_dir=tmp_path, environ={})
    assert "refer_to_police" not in york_actions.policy.triage_outcomes
    workington = load_settings(EXAMPLES / "workington.toml", instance_dir=tmp_path, environ={})
    assert {"refer_to_police", "legal_action"} <= set(workington.policy.triage_outcomes)
