"""Telling the person: the decision letter or the recorded exception, and every letter sent."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sidecar.register import flags as flag_service
from sidecar.register import history
from sidecar.register.case_models import Letter, Notice
from sidecar.register.models import Flag
from sidecar.register.rules import (
    Action,
    Conflict,
    Invalid,
    NotFound,
    appeal_deadline,
    current_restrictions,
    letter_signatory,
    require,
    withheld_missing,
)
from sidecar.register.staff import Actor, holds, name_of
from sidecar.register.status import restriction_label
from sidecar.settings import Settings
from sidecar.storage.crypto import KeyRing
from sidecar.storage.database import utcnow

DIRECTOR_ROLE = "service_director"
TEMPLATES = {
    "decision": "decision.html",
    "appeal_outcome": "appeal_outcome.html",
    "review_outcome": "review_outcome.html",
}


class LetterTemplateError(Exception):
    """A letter template is missing or broken: a configuration fault, not bad input."""


def notice_of(session: Session, flag: Flag) -> Notice | None:
    return session.scalars(select(Notice).where(Notice.flag_id == flag.id)).first()


def notice_day(session: Session, flag: Flag) -> date | None:
    notice = notice_of(session, flag)
    return notice.issued_at.date() if notice else None


def render(settings: Settings, kind: str, context: dict[str, Any]) -> str:
    environment = Environment(
        loader=FileSystemLoader(settings.letters_path),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    try:
        return environment.get_template(TEMPLATES[kind]).render(**context)
    except TemplateNotFound as exc:
        raise LetterTemplateError(
            f"letter template {exc.name} is missing from {settings.letters_path}"
        ) from None
    except Exception as exc:  # a template error must not leave a half-made letter
        raise LetterTemplateError(f"letter template {TEMPLATES[kind]}: {exc}") from None


def letter_context(
    session: Session, settings: Settings, keyring: KeyRing, flag: Flag, today: date
) -> dict[str, Any]:
    """What every letter about the flag may say: the terms as they stand."""
    notice = notice_of(session, flag)
    issued = notice.issued_at.date() if notice else today
    return {
        "council": settings.deployment.council_name,
        "date": today.isoformat(),
        "reference": flag.id,
        "subject_ref": flag.subject.ref,
        "recipient_name": notice.unseal(keyring, "recipient_name") if notice else None,
        "recipient_address": notice.unseal(keyring, "recipient_address") if notice else None,
        "level_label": settings.label("levels", flag.level),
        "category_labels": [settings.label("categories", c) for c in flag.categories],
        "restrictions": [
            {"label": restriction_label(settings, r), "ends_on": r.get("ends_on")}
            for r in current_restrictions(flag.restrictions or [], today)
        ],
        "reason": flag.unseal(keyring, "reason") or "",
        "ends_on": flag.ends_on.isoformat() if flag.ends_on else None,
        "review_due": flag.review_due.isoformat() if flag.review_due else "",
        "appeal_window_days": settings.policy.appeal_window_days,
        "appeal_deadline": appeal_deadline(issued, settings.policy.appeal_window_days).isoformat(),
        "appeal_address": settings.lifecycle.appeal_address,
        "signatory_title": settings.lifecycle.letter_signoff_title,
    }


def write_letter(
    session: Session,
    settings: Settings,
    keyring: KeyRing,
    actor: Actor,
    flag: Flag,
    kind: str,
    signatory: str,
    *,
    signatory_title: str | None = None,
    extra: dict[str, Any] | None = None,
    now: datetime,
) -> Letter:
    """Render a letter from its template, seal it and number it within the flag."""
    context = letter_context(session, settings, keyring, flag, now.date())
    signed_name = name_of(session, signatory) or signatory
    context.update(signatory_name=signed_name, **(extra or {}))
    if signatory_title:
        context["signatory_title"] = signatory_title
    body = render(settings, kind, context)
    n = (session.scalar(select(func.max(Letter.n)).where(Letter.flag_id == flag.id)) or 0) + 1
    letter = Letter(
        flag_id=flag.id,
        n=n,
        kind=kind,
        created_at=now,
        created_by=actor.id,
        signed_by=signatory,
        signed_by_name=signed_name,
    )
    letter.seal(keyring, "body", body)
    session.add(letter)
    return letter


def issue_notice(
    session: Session,
    settings: Settings,
    keyring: KeyRing,
    actor: Actor,
    flag_id: str,
    method: str,
    *,
    recipient_name: str | None = None,
    recipient_address: str | None = None,
    legal_guidance_ref: str | None = None,
    director_permission_by: str | None = None,
    reason: str | None = None,
    now: datetime | None = None,
) -> tuple[Notice, Letter | None]:
    """Send the decision letter, or record the exception that lets the council withhold it."""
    now = now or utcnow()
    flag = flag_service.load(session, flag_id, for_update=True)
    require(flag.state, Action.NOTICE)
    existing = notice_of(session, flag)
    if existing is not None:
        raise Conflict(
            f"this flag's notice was already given ({existing.method}, "
            f"{existing.issued_at.date().isoformat()})"
        )
    notice = Notice(flag_id=flag.id, method=method, issued_by=actor.id, issued_at=now)
    if method == "withheld":
        missing = withheld_missing(legal_guidance_ref, director_permission_by, reason)
        if missing:
            raise Invalid(
                "withholding the letter needs the legal guidance reference, the Service "
                f"Director's permission and the reason; missing: {', '.join(missing)}",
                missing=missing,
            )
        director = (director_permission_by or "").strip()
        if director == actor.id:
            held: bool | None = DIRECTOR_ROLE in actor.roles
        else:
            held = holds(session, director, DIRECTOR_ROLE)
        if not held:
            raise Invalid(
                f"director_permission_by: {director!r} is not "
                + ("a service_director" if held is False else "known as a service_director")
                + " (they must have signed in to Forewarn with that role)"
            )
        notice.legal_guidance_ref = (legal_guidance_ref or "").strip()
        notice.director_permission_by = director
        notice.seal(keyring, "withheld_reason", (reason or "").strip())
        session.add(notice)
        history.record(
            session,
            flag,
            actor,
            "notice_withheld",
            f"letter withheld on legal guidance {notice.legal_guidance_ref} with the permission "
            f"of Service Director {name_of(session, director)}",
            from_state=flag.state,
            facts={"legal_guidance_ref": notice.legal_guidance_ref, "director": director},
            at=now,
        )
        return notice, None
    if method != "letter":
        raise Invalid(f"method must be letter or withheld, not {method!r}")
    signatory = letter_signatory(actor.id, actor.roles, flag_service.votes_of(session, flag))
    notice.seal(keyring, "recipient_name", recipient_name or None)
    notice.seal(keyring, "recipient_address", recipient_address or None)
    session.add(notice)
    session.flush()
    letter = write_letter(session, settings, keyring, actor, flag, "decision", signatory, now=now)
    history.record(
        session,
        flag,
        actor,
        "notice_letter",
        f"decision letter {letter.n} sent, signed by {letter.signed_by_name}",
        from_state=flag.state,
        facts={"letter": letter.n, "signed_by": signatory},
        at=now,
    )
    return notice, letter


def letters_of(session: Session, flag: Flag) -> list[Letter]:
    return list(session.scalars(select(Letter).where(Letter.flag_id == flag.id).order_by(Letter.n)))


def letter(session: Session, flag: Flag, n: int) -> Letter:
    found = session.scalars(select(Letter).where(Letter.flag_id == flag.id, Letter.n == n)).first()
    if found is None:
        raise NotFound(f"flag {flag.id} has no letter {n}")
    return found


def letter_json(item: Letter) -> dict[str, Any]:
    return {
        "n": item.n,
        "kind": item.kind,
        "created_at": item.created_at.isoformat(),
        "created_by": item.created_by,
        "signed_by": {"id": item.signed_by, "name": item.signed_by_name},
        "purged": item.body is None,
    }
