"""Each console page's one call into the register's services, in a transaction of its own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy.orm import Session

from sidecar.audit import writer as audit
from sidecar.register.context import ServiceContext
from sidecar.register.rules import Refusal
from sidecar.runtime import Runtime, current_runtime

T = TypeVar("T")


def call(action: str, work: Callable[[ServiceContext], T], **subject: Any) -> T:
    """Run `work` in one transaction: all of it is written, or (on any refusal) none of it.

    A refusal on who is asking is audited as the API audits it; every refusal is raised
    again for the page to show. `work` returns plain values: the session is closed after.
    """
    runtime = current_runtime()
    try:
        with runtime.database.transaction() as session:
            return work(
                ServiceContext(
                    session=session,
                    settings=runtime.settings,
                    keyring=runtime.keyring,
                    actor=current_user._get_current_object(),
                )
            )
    except Refusal as exc:
        if exc.kind == "forbidden":
            audit.record_denied(action, exc.message, **subject)
        raise


def read(work: Callable[[Session, Runtime], T]) -> T:
    """Run a read in a transaction of its own (nothing it does is kept if it fails)."""
    runtime = current_runtime()
    with runtime.database.transaction() as session:
        return work(session, runtime)


def show_refusal(form: FlaskForm, exc: Refusal, fields: dict[str, str], default: str) -> None:
    """Put a service's refusal beside the field it concerns, for the error summary.

    `fields` maps words the services use in their messages ("occurred_at", "UPRN") to the
    form's field names; a refusal naming none of them goes beside `default`.
    """
    problems = exc.facts.get("problems") or [exc.message]
    for problem in problems:
        name = next((f for word, f in fields.items() if word in problem), default)
        getattr(form, name).errors.append(_sentence(problem))


def _sentence(message: str) -> str:
    text = message.strip()
    return text[:1].upper() + text[1:]
