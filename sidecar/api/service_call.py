"""The preamble of every case-management view: one transaction, one service context."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import current_app
from flask_login import current_user

from sidecar.audit import writer as audit
from sidecar.errors import Problem
from sidecar.register.context import ServiceContext
from sidecar.register.notices import LetterTemplateError
from sidecar.register.rules import Refusal
from sidecar.runtime import current_runtime

STATUS = {"conflict": 409, "forbidden": 403, "invalid": 422, "not_found": 404}
SLUG = {
    "conflict": "conflict",
    "forbidden": "forbidden",
    "invalid": "invalid-request",
    "not_found": "not-found",
}


@contextmanager
def service_call(action: str, **subject: Any) -> Iterator[ServiceContext]:
    """A transaction for the signed-in user whose refusals become problems once rolled back.

    A forbidden refusal is audited as a denial of `action` on `subject`.
    """
    runtime = current_runtime()
    try:
        with runtime.database.transaction() as session:
            yield ServiceContext(
                session=session,
                settings=runtime.settings,
                keyring=runtime.keyring,
                actor=current_user._get_current_object(),
            )
    except Refusal as exc:
        if exc.kind == "forbidden":
            audit.record_denied(action, exc.message, **subject)
        raise Problem(STATUS[exc.kind], SLUG[exc.kind], exc.message, **exc.facts) from None
    except LetterTemplateError as exc:
        current_app.logger.error("letter template fault: %s", exc)
        raise Problem(500, "letter-template", str(exc)) from None
