"""gunicorn's access log with every request-supplied value escaped, one request per line."""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger

FORMAT = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(L)ss'
"""Client, method, path (never the query, which may carry a token), status, size, time."""


def escaped(value: str) -> str:
    """Control characters, backslashes and non-ASCII written as escapes (gunicorn itself
    escapes quotes).

    A `%0a` in a path decodes to a line feed: unescaped, it would start a forged line.
    """
    return value.encode("unicode_escape").decode("ascii")


class EscapedAccessLog(Logger):
    """The access log's atoms as gunicorn builds them, with the path and method escaped."""

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> Any:
        found = super().atoms(resp, req, environ, request_time)
        for atom in ("U", "m"):
            if isinstance(found.get(atom), str):
                found[atom] = escaped(found[atom])
        return found
