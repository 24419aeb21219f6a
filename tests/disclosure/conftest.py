"""The leak test's seeded app (one per engine, for the whole module) and its tally."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from sidecar import create_app
from sidecar.settings import load_settings
from sidecar.storage.keys import KeyFiles, ensure_keys
from tests.conftest import CONFIG, reset_postgres
from tests.disclosure.case import Case, seed

TALLY: dict[str, Counter[str]] = {}
"""Per engine: the cells checked, and those where the caller may see confidential text."""


@pytest.fixture(scope="module")
def case(
    engine_kind: str, migrated_template: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Case]:
    """One app on a clean database holding the seeded case, shared by every cell: reads
    change nothing a later cell reads, and writes are aimed so that they change nothing."""
    base = tmp_path_factory.mktemp(f"leak-{engine_kind}")
    yield from seeded(base, engine_kind, migrated_template)


def seeded(
    base: Path, engine_kind: str, migrated_template: str, overrides: dict | None = None
) -> Iterator[Case]:
    """The seeded case on an app of its own under `base` (settings changed by `overrides`)."""
    instance = base / "instance"
    instance.mkdir()
    (instance / "DEMO").touch()
    ensure_keys(KeyFiles.of(instance), demo=True)
    if engine_kind == "sqlite":
        target = base / "forewarn.db"
        shutil.copyfile(Path(migrated_template.removeprefix("sqlite:///")), target)
        url = f"sqlite:///{target}"
    else:
        reset_postgres(migrated_template)
        url = migrated_template
    settings = load_settings(
        CONFIG, instance_dir=instance, database_url=url, environ={}, overrides=overrides or {}
    )
    app = create_app(settings)
    app.config["TESTING"] = True
    yield seed(Case(app))
    app.extensions["forewarn"].database.dispose()


@pytest.fixture
def tally(engine_kind: str) -> Counter[str]:
    return TALLY.setdefault(engine_kind, Counter())


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for engine, counts in sorted(TALLY.items()):
        terminalreporter.write_line(
            f"leak matrix ({engine}): {counts['cells']} cells, {counts['allowed']} allowed"
        )
