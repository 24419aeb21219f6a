"""The banner status cache: short-lived, cleared on every flag change here and on other instances.

Within a process a change clears the cache once its transaction commits. Across instances on
PostgreSQL the change sends a NOTIFY in the same transaction (delivered only on commit) and a
listener thread in every instance clears its cache when one arrives. While the listener is not
connected the cache is bypassed, so a lost notification can never keep a stale status.
On SQLite (one host, often one process) other worker processes see a change within the TTL.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable, Hashable
from typing import Any

import psycopg
from cachetools import TTLCache
from flask import Flask, current_app, has_app_context
from sqlalchemy import event, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

CHANNEL = "forewarn_status"
EXTENSION = "forewarn.status_cache"
_PENDING = "forewarn.status_cache.pending"
FIRST_LISTEN_WAIT_SECONDS = 3.0


class ChangeListener:
    """A thread that LISTENs for status changes on PostgreSQL and reports each batch of them."""

    def __init__(self, conninfo: str, on_change: Callable[[], None]) -> None:
        self._conninfo = conninfo
        self._on_change = on_change
        self._listening = threading.Event()
        self._tried = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        self._lock = threading.Lock()

    def listening(self) -> bool:
        """Start the thread if this process has none; True once it is listening.

        Started on first use, not at app creation, so a forking server (gunicorn) starts one
        in each worker rather than one in the parent that the workers would not inherit.
        """
        with self._lock:
            started_now = False
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._listening.clear()
                self._tried.clear()
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._run, name="forewarn-status-listener", daemon=True
                )
                self._thread.start()
                started_now = True
        if started_now:
            self._tried.wait(FIRST_LISTEN_WAIT_SECONDS)
        return self._listening.is_set()

    def close(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                with psycopg.connect(
                    self._conninfo,
                    autocommit=True,
                    connect_timeout=5,
                    application_name="forewarn-status-listener",
                ) as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    # Whatever was cached while not listening may have missed a change.
                    self._on_change()
                    self._listening.set()
                    self._tried.set()
                    backoff = 0.5
                    while not self._stop.is_set():
                        if any(True for _ in connection.notifies(timeout=1.0)):
                            self._on_change()
            except psycopg.Error as exc:
                log.warning("status change listener lost its connection: %s", exc)
            finally:
                self._listening.clear()
                self._tried.set()
            self._stop.wait(backoff)
            backoff = min(backoff * 2, 30.0)


class StatusCache:
    """Subject status (without the per-user parts) by subject, for a few seconds."""

    def __init__(self, ttl: float, size: int, listener_conninfo: str | None) -> None:
        self._ttl = ttl
        self._cache: TTLCache[Hashable, Any] = TTLCache(maxsize=size, ttl=ttl) if ttl else None
        self._lock = threading.Lock()
        self._generation = 0
        self.listener: ChangeListener | None = None
        if listener_conninfo is not None and ttl:
            self.listener = ChangeListener(listener_conninfo, _weak_call(self.clear))
            weakref.finalize(self, self.listener.close)

    def get(self, key: Hashable, load: Callable[[], Any]) -> Any:
        """The cached value for `key`, or `load()` (cached unless a change happened meanwhile)."""
        if self._cache is None or (self.listener is not None and not self.listener.listening()):
            return load()
        with self._lock:
            value = self._cache.get(key)
            generation = self._generation
        if value is not None:
            return value
        value = load()
        with self._lock:
            # A change that committed while we loaded must not be overwritten by what we read.
            if generation == self._generation:
                self._cache[key] = value
        return value

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            if self._cache is not None:
                self._cache.clear()

    def close(self) -> None:
        if self.listener is not None:
            self.listener.close()


def _weak_call(method: Callable[[], None]) -> Callable[[], None]:
    ref = weakref.WeakMethod(method)

    def call() -> None:
        target = ref()
        if target is not None:
            target()

    return call


def _conninfo(database_url: str) -> str | None:
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        return None
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def install(app: Flask) -> StatusCache:
    """Give the app its cache (listening on PostgreSQL) under `app.extensions`."""
    state = app.extensions["forewarn"]
    cache = StatusCache(
        state.settings.lookup.status_cache_seconds,
        state.settings.lookup.status_cache_size,
        _conninfo(state.settings.database_url),
    )
    app.extensions[EXTENSION] = cache
    return cache


def of(app: Flask) -> StatusCache:
    return app.extensions[EXTENSION]


def announce(session: Session) -> None:
    """Tell every instance that a subject's status changed, once the session commits.

    Called by `status.status_changed` inside the changing transaction, so a rolled-back
    change announces nothing and a committed one is never missed.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_notify(CHANNEL, "")))
    if has_app_context() and EXTENSION in current_app.extensions and not session.info.get(_PENDING):
        cache = of(current_app)
        session.info[_PENDING] = True

        def cleared(committed: Session) -> None:
            committed.info.pop(_PENDING, None)
            cache.clear()

        event.listen(session, "after_commit", cleared, once=True)
