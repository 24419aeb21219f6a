"""Telling the person: the decision letter or the recorded exception, and every letter sent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateNotFound
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sidecar.register import flag_references, history
from sidecar.register import flags as flag_service
from sidecar.register.case_models import Letter, Notice, PanelDecision, WithholdingGuidance
from sidecar.register.context import ServiceContext
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
from sidecar.register.staff import holds, name_of
from sidecar.register.status import restriction_label, status_changed
from sidecar.settings import Settings

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


def panel_handler(session: Session, settings: Settings, flag: Flag) -> str | None:
    """The panel member in the council's appeal handler role (appeals.handler_role; Eastleigh
    27, 30: the Senior Manager), who handles the case; None without one the staff directory
    knows in that role (an imported flag, or a council whose handlers do not sit)."""
    role = settings.appeals.handler_role
    member = session.scalar(
        select(PanelDecision.decided_by).where(
            PanelDecision.flag_id == flag.id, PanelDecision.role == role
        )
    )
    if member is None or not holds(session, member, role):
        return None
    return member


def named_handler(settings: Settings, notice: Notice | None) -> str | None:
    """The Senior Manager a decision letter names as handling the case, where the council's
    settings name one for the whole appeal window (lifecycle.name_handler_in_window)."""
    if notice is None or not settings.lifecycle.name_handler_in_window:
        return None
    return notice.handling_manager_name or notice.handling_manager


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


def long_date(day: date | str | None) -> str:
    """A date as a letter writes it in the UK: 23 December 2026 (no leading zero)."""
    if not day:
        return ""
    if isinstance(day, str):
        day = date.fromisoformat(day)
    return f"{day.day} {day:%B %Y}"


def letter_context(ctx: ServiceContext, flag: Flag, today: date) -> dict[str, Any]:
    """What every letter about the flag may say: the terms as they stand, dates in words."""
    settings, keyring = ctx.settings, ctx.keyring
    notice = notice_of(ctx.session, flag)
    issued = notice.issued_at.date() if notice else today
    return {
        "council": settings.deployment.council_name,
        "date": long_date(today),
        "reference": flag_references.ensure_reference(ctx.session, flag),
        "subject_ref": flag.subject.ref,
        "recipient_name": notice.unseal(keyring, "recipient_name") if notice else None,
        "recipient_address": notice.unseal(keyring, "recipient_address") if notice else None,
        "level_label": settings.label("levels", flag.level),
        "category_labels": [settings.label("categories", c) for c in flag.categories],
        "restrictions": [
            {"label": restriction_label(settings, r), "ends_on": long_date(r.get("ends_on"))}
            for r in current_restrictions(flag.restrictions or [], today)
        ],
        "reason": flag.unseal(keyring, "reason") or "",
        "ends_on": long_date(flag.ends_on) or None,
        "review_due": long_date(flag.review_due),
        "appeal_window_days": settings.policy.appeal_window_days,
        "appeal_deadline": long_date(appeal_deadline(issued, settings.policy.appeal_window_days)),
        "appeal_address": settings.lifecycle.appeal_address,
        "handling_manager_name": named_handler(settings, notice),
        "signatory_title": settings.lifecycle.letter_signoff_title,
    }


def write_letter(
    ctx: ServiceContext,
    flag: Flag,
    kind: str,
    signatory: str,
    *,
    signatory_title: str | None = None,
    extra: dict[str, Any] | None = None,
    now: datetime,
) -> Letter:
    """Render a letter from its template, seal it and number it within the flag."""
    session = ctx.session
    context = letter_context(ctx, flag, now.date())
    signed_name = name_of(session, signatory) or signatory
    context.update(signatory_name=signed_name, **(extra or {}))
    if signatory_title:
        context["signatory_title"] = signatory_title
    body = render(ctx.settings, kind, context)
    n = (session.scalar(select(func.max(Letter.n)).where(Letter.flag_id == flag.id)) or 0) + 1
    letter = Letter(
        flag_id=flag.id,
        n=n,
        kind=kind,
        created_at=now,
        created_by=ctx.actor.id,
        signed_by=signatory,
        signed_by_name=signed_name,
    )
    letter.seal(ctx.keyring, "body", body)
    session.add(letter)
    return letter


def preview_decision_letter(
    ctx: ServiceContext,
    flag_id: str,
    *,
    recipient_name: str | None,
    recipient_address: str | None,
) -> str:
    """The decision letter as sending it now would write it; nothing about it is stored."""
    flag = flag_service.load(ctx.session, flag_id)
    require(flag.state, Action.NOTICE)
    _refuse_a_second_notice(ctx.session, flag)
    signatory = _signatory(ctx, flag)
    context = letter_context(ctx, flag, ctx.now().date())
    context.update(
        recipient_name=recipient_name or None,
        recipient_address=recipient_address or None,
        signatory_name=name_of(ctx.session, signatory) or signatory,
    )
    return render(ctx.settings, "decision", context)


@dataclass(frozen=True)
class Withholding:
    """The exception that lets the council withhold the decision letter, as recorded."""

    legal_guidance_ref: str | None
    director_permission_by: str | None
    reason: str | None


def issue_notice(
    ctx: ServiceContext,
    flag_id: str,
    method: str,
    *,
    recipient_name: str | None = None,
    recipient_address: str | None = None,
    legal_guidance_ref: str | None = None,
    director_permission_by: str | None = None,
    reason: str | None = None,
) -> tuple[Notice, Letter | None]:
    """Send the decision letter, or record the exception that lets the council withhold it."""
    now = ctx.now()
    flag = flag_service.load(ctx.session, flag_id, for_update=True)
    require(flag.state, Action.NOTICE)
    _refuse_a_second_notice(ctx.session, flag)
    notice = Notice(flag_id=flag.id, method=method, issued_by=ctx.actor.id, issued_at=now)
    flag.notice_at = now
    if method == "withheld":
        withholding = Withholding(legal_guidance_ref, director_permission_by, reason)
        _withhold_letter(ctx, flag, notice, withholding, now)
        return notice, None
    if method != "letter":
        raise Invalid(f"method must be letter or withheld, not {method!r}")
    notice.seal(ctx.keyring, "recipient_name", recipient_name or None)
    notice.seal(ctx.keyring, "recipient_address", recipient_address or None)
    return notice, _send_decision_letter(ctx, flag, notice, now)


def guidance_of(session: Session, flag: Flag) -> WithholdingGuidance | None:
    return session.scalars(
        select(WithholdingGuidance).where(WithholdingGuidance.flag_id == flag.id)
    ).first()


def record_guidance(
    ctx: ServiceContext, flag_id: str, legal_guidance_ref: str, reason: str
) -> WithholdingGuidance:
    """The Head of Legal's guidance to withhold the letter; it waits for a Service Director.

    Until a director gives permission the guidance may be recorded again (it replaces the
    earlier one), and the letter may still be sent instead.
    """
    now = ctx.now()
    ref, why = legal_guidance_ref.strip(), reason.strip()
    problems = [
        message
        for value, message in (
            (ref, "legal_guidance_ref: enter the legal guidance reference"),
            (why, "reason: say why telling the person would put someone at risk"),
        )
        if not value
    ]
    if problems:
        raise Invalid("; ".join(problems), problems=problems)
    flag = flag_service.load(ctx.session, flag_id, for_update=True)
    require(flag.state, Action.NOTICE)
    _refuse_a_second_notice(ctx.session, flag)
    guidance = guidance_of(ctx.session, flag)
    if guidance is None:
        guidance = WithholdingGuidance(flag_id=flag.id)
        ctx.session.add(guidance)
    guidance.legal_guidance_ref = ref
    guidance.refused_by = guidance.refused_by_name = guidance.refused_at = None
    guidance.refusal_reason = None
    guidance.recorded_by = ctx.actor.id
    guidance.recorded_by_name = ctx.actor.name
    guidance.recorded_at = now
    guidance.seal(ctx.keyring, "reason", why)
    history.record(
        ctx,
        flag,
        "withholding_advised",
        f"legal guidance {ref} advises withholding the decision letter; awaiting a "
        f"{permitting_title(ctx.settings)}'s permission",
        from_state=flag.state,
        facts={"legal_guidance_ref": ref},
        at=now,
    )
    return guidance


def permit_withholding(ctx: ServiceContext, flag_id: str) -> Notice:
    """A Service Director, acting themselves, permits withholding on the recorded guidance."""
    flag = flag_service.load(ctx.session, flag_id)
    guidance = _awaiting_permission(ctx.session, flag)
    notice, _letter = issue_notice(
        ctx,
        flag_id,
        "withheld",
        legal_guidance_ref=guidance.legal_guidance_ref,
        director_permission_by=ctx.actor.id,
        reason=guidance.unseal(ctx.keyring, "reason"),
    )
    return notice


REFUSAL_MAX = 2000


def refuse_withholding(ctx: ServiceContext, flag_id: str, reason: str) -> WithholdingGuidance:
    """A Service Director, acting themselves, refuses permission to withhold the letter.

    The refusal and its reason go on the flag's history (and so the access log); the letter
    must then be sent, unless the Head of Legal records new guidance for a director to
    consider again.
    """
    why = reason.strip()
    if not why or len(why) > REFUSAL_MAX:
        problem = (
            "reason: say why you refuse permission to withhold the letter"
            if not why
            else f"reason: keep the reason to {REFUSAL_MAX:,} characters"
        )
        raise Invalid(problem, problems=[problem])
    now = ctx.now()
    flag = flag_service.load(ctx.session, flag_id, for_update=True)
    require(flag.state, Action.NOTICE)
    _refuse_a_second_notice(ctx.session, flag)
    guidance = _awaiting_permission(ctx.session, flag)
    _check_director(ctx, ctx.actor.id)
    guidance.refused_by = ctx.actor.id
    guidance.refused_by_name = ctx.actor.name
    guidance.refused_at = now
    guidance.refusal_reason = why
    history.record(
        ctx,
        flag,
        "withholding_refused",
        f"{permitting_title(ctx.settings)} {ctx.actor.name or ctx.actor.id} refused permission "
        f"to withhold the decision letter on legal guidance {guidance.legal_guidance_ref}: {why}",
        from_state=flag.state,
        facts={"legal_guidance_ref": guidance.legal_guidance_ref, "director": ctx.actor.id},
        at=now,
    )
    return guidance


def _awaiting_permission(session: Session, flag: Flag) -> WithholdingGuidance:
    """The flag's guidance to withhold, if a director may still give or refuse permission."""
    guidance = guidance_of(session, flag)
    if guidance is None:
        raise Conflict("no legal guidance to withhold this flag's letter has been recorded")
    if guidance.refused_at is not None:
        raise Conflict(
            f"permission to withhold on legal guidance {guidance.legal_guidance_ref} was "
            f"refused by {guidance.refused_by_name or guidance.refused_by}; the letter must be "
            "sent, or the Head of Legal records new guidance"
        )
    return guidance


def _refuse_a_second_notice(session: Session, flag: Flag) -> None:
    existing = notice_of(session, flag)
    if existing is not None:
        raise Conflict(
            f"this flag's notice was already given ({existing.method}, "
            f"{existing.issued_at.date().isoformat()})"
        )


def _check_director(ctx: ServiceContext, director: str) -> None:
    """The permission must come from someone known to hold the council's role for it
    (lifecycle.withhold_permission_role; a Service Director by default)."""
    role = ctx.settings.lifecycle.withhold_permission_role
    if not role:
        raise Invalid(
            "director_permission_by: this council's settings name no role that may permit "
            "withholding a letter (lifecycle.withhold_permission_role): send the letter"
        )
    if director == ctx.actor.id:
        held: bool | None = role in ctx.actor.roles
    else:
        held = holds(ctx.session, director, role)
    if not held:
        raise Invalid(
            f"director_permission_by: {director!r} is not "
            + (f"a {role}" if held is False else f"known as a {role}")
            + " (they must have signed in to Forewarn with that role)"
        )


def permitting_title(settings: Settings) -> str:
    """How staff read the role that permits withholding a letter ("Service Director")."""
    return settings.access.role_name(settings.lifecycle.withhold_permission_role)


def _withhold_letter(
    ctx: ServiceContext, flag: Flag, notice: Notice, withholding: Withholding, now: datetime
) -> None:
    missing = withheld_missing(
        withholding.legal_guidance_ref, withholding.director_permission_by, withholding.reason
    )
    if missing:
        raise Invalid(
            "withholding the letter needs the legal guidance reference, the Service "
            f"Director's permission and the reason; missing: {', '.join(missing)}",
            missing=missing,
        )
    director = (withholding.director_permission_by or "").strip()
    _check_director(ctx, director)
    notice.legal_guidance_ref = (withholding.legal_guidance_ref or "").strip()
    notice.director_permission_by = director
    notice.seal(ctx.keyring, "withheld_reason", (withholding.reason or "").strip())
    ctx.session.add(notice)
    history.record(
        ctx,
        flag,
        "notice_withheld",
        f"letter withheld on legal guidance {notice.legal_guidance_ref} with the permission "
        f"of {permitting_title(ctx.settings)} {name_of(ctx.session, director)}",
        from_state=flag.state,
        facts={"legal_guidance_ref": notice.legal_guidance_ref, "director": director},
        at=now,
    )


def _signatory(ctx: ServiceContext, flag: Flag) -> str:
    role = ctx.settings.lifecycle.letter_signatory_role
    votes = flag_service.votes_of(ctx.session, flag)
    title = ctx.settings.access.role_name(role)
    return letter_signatory(ctx.actor.id, ctx.actor.roles, votes, role, title)


def _send_decision_letter(ctx: ServiceContext, flag: Flag, notice: Notice, now: datetime) -> Letter:
    signatory = _signatory(ctx, flag)
    handler = panel_handler(ctx.session, ctx.settings, flag)
    notice.handling_manager = handler
    notice.handling_manager_name = name_of(ctx.session, handler) or ""
    ctx.session.add(notice)
    ctx.session.flush()
    letter = write_letter(ctx, flag, "decision", signatory, now=now)
    history.record(
        ctx,
        flag,
        "notice_letter",
        f"decision letter {letter.n} sent, signed by {letter.signed_by_name}",
        from_state=flag.state,
        facts={"letter": letter.n, "signed_by": signatory, "handling_manager": handler},
        at=now,
    )
    if named_handler(ctx.settings, notice):
        # From the letter on, the banner names the handling Senior Manager.
        status_changed(ctx.session, flag.subject)
    return letter


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
