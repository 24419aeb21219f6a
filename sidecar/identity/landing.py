"""Where a browser may be sent after signing in: a path on this site, never another site."""

from __future__ import annotations

from urllib.parse import urlsplit

from sidecar.errors import Problem

HOME = "/"
# Printable ASCII without space or backslash: browsers drop tabs and newlines from a URL and
# read "\" as "/", so "/\t/evil.example" or "/\\evil.example" would leave the site.
_ALLOWED = frozenset(chr(c) for c in range(0x21, 0x7F)) - {"\\"}


def landing_path(value: str | None) -> str:
    """`value` if it is a path on this site, else the console home.

    A path parses with no scheme and no host, starts with one "/" and holds only printable
    ASCII other than backslash. A value carrying CR or LF is refused outright (400): it is an
    attempt to write a header, and is refused before any session is started or audited.
    """
    if not value:
        return HOME
    if "\r" in value or "\n" in value:
        raise Problem(400, "invalid-request", "query field 'next': line breaks are not allowed")
    if not set(value) <= _ALLOWED or not value.startswith("/") or value.startswith("//"):
        return HOME
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return HOME
    return value
