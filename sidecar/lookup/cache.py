"""The banner status cache, keyed by the subject's status version: never stale, on any instance.

Every change to what a banner shows goes through `status.status_changed`, which bumps the
subject's `status_version` in the changing transaction (and each linked property's). A banner
read first reads the subject's id and version from the database, in one indexed statement, and
looks the status up under `(subject id, version, today)`. A committed change is therefore seen
by the next read in every process and on every instance, with no message to lose and nothing to
clear; a rolled-back change leaves the version as it was. The date is part of the key because a
time-limited restriction stops showing when its end date passes.

The TTL bounds only what a version does not cover: a renamed member of staff named on a banner
(an appeal's handling manager).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any

from cachetools import TTLCache
from flask import Flask

EXTENSION = "forewarn.status_cache"


class StatusCache:
    """Subject status (without the per-user parts) by (subject id, status version, day)."""

    def __init__(self, ttl: float, size: int) -> None:
        self._cache: TTLCache[Hashable, Any] | None = (
            TTLCache(maxsize=size, ttl=ttl) if ttl else None
        )
        self._lock = threading.Lock()

    def get(self, key: Hashable, load: Callable[[], Any]) -> Any:
        """The value cached under `key`, or `load()`, which is then cached."""
        if self._cache is None:
            return load()
        with self._lock:
            value = self._cache.get(key)
        if value is None:
            value = load()
            with self._lock:
                self._cache[key] = value
        return value


def install(app: Flask) -> StatusCache:
    """Give the app its cache under `app.extensions`."""
    settings = app.extensions["forewarn"].settings
    cache = StatusCache(settings.lookup.status_cache_seconds, settings.lookup.status_cache_size)
    app.extensions[EXTENSION] = cache
    return cache


def of(app: Flask) -> StatusCache:
    return app.extensions[EXTENSION]
