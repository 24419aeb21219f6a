"""Lookup fixtures: the register, written directly as the lifecycle leaves it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from flask import Flask
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from sidecar.storage.crypto import KeyRing


@contextmanager
def _register(app: Flask) -> Iterator[tuple[Session, KeyRing]]:
    state = app.extensions["forewarn"]
    with app.app_context(), state.database.transaction() as session:
        yield session, state.keyring


@pytest.fixture
def register(app: Flask):
    """A transaction inside the app (as its own services run) and its key ring, for factories."""
    return lambda: _register(app)


@pytest.fixture
def register_for():
    """The same, for an app the test built itself."""
    return _register


@contextmanager
def audit_store_broken(database_url: str) -> Iterator[None]:
    """Make the audit table unwritable from outside the app, as a failed disk or a revoked
    grant would, and put it back afterwards."""
    engine = create_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("ALTER TABLE audit_entries RENAME TO audit_entries_away"))
        yield
    finally:
        with engine.begin() as connection:
            connection.execute(text("ALTER TABLE audit_entries_away RENAME TO audit_entries"))
        engine.dispose()
