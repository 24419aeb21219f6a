"""Demo data for `forewarn init --demo`, created through the same services staff use."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from sqlalchemy import select

from sidecar.register import appeals, flags, incidents, notices, personas, subjects
from sidecar.register.context import ServiceContext
from sidecar.register.models import Flag, Subject
from sidecar.register.rules import FlagTerms, Restriction
from sidecar.settings import Settings
from sidecar.storage.crypto import KeyRing
from sidecar.storage.database import Database
from sidecar.storage.keys import KeyFiles

DEMO_SUBJECTS = (
    ("customer", "CRM-1001"),
    ("customer", "CRM-1002"),
    ("customer", "CRM-1003"),
    ("customer", "CRM-1004"),
    ("property", "100023336956"),
)


def _flag(
    ctx: ServiceContext,
    ref: str,
    terms: FlagTerms,
    reason: str,
    measures: str,
    incident: tuple[str, tuple[str, ...], str, bool],
) -> Flag:
    """An incident, a proposal, the panel's approvals and the decision letter, each by the
    persona of the role the council's settings give that step."""
    settings = ctx.settings
    officer = personas.holding(settings, "flag.propose", "case_officer").person
    occurred = ctx.now() - timedelta(days=20)
    report = incidents.report_incident(
        ctx.acting_as(officer),
        incidents.IncidentReport(
            kind="customer",
            ref=ref,
            occurred_at=occurred,
            channel=incident[0],
            behaviour_types=incident[1],
            narrative=incident[2],
            warning_given=incident[3],
        ),
    )
    # A council whose catalogue lacks a restriction goes without it.
    known = settings.catalogue.restrictions
    terms = replace(terms, restrictions=tuple(r for r in terms.restrictions if r.code in known))
    flag = flags.propose(
        ctx.acting_as(officer),
        flags.Proposal(
            kind="customer",
            ref=ref,
            terms=terms,
            reason=reason,
            control_measures=measures,
            responsible_manager=personas.of_role(settings, settings.appeals.handler_role).user_id,
            reasonable_adjustments="None known; offered contact by letter in large print.",
            incident_ids=(report.id,),
            warning_given_on=occurred.date()
            if settings.policy.warning_before_flag == "require"
            else None,
        ),
    )
    for role in settings.panel.roles:
        if flag.state != "proposed":
            break
        flag = flags.decide_panel(
            ctx.acting_as(personas.of_role(settings, role).person),
            flag.id,
            role,
            "approve",
            flags.Assessment(
                severity="high" if terms.level == "red" else "moderate",
                frequency="repeated",
                proportionality="The restrictions are the least that keeps staff safe.",
                reasonable_adjustments="None needed beyond those recorded.",
            ),
        )
    issuer = personas.holding(settings, "notice.issue", settings.lifecycle.letter_signatory_role)
    notices.issue_notice(
        ctx.acting_as(issuer.person), flag.id, "letter", recipient_name=f"Customer {ref}"
    )
    return flag


def _seed_flags(ctx: ServiceContext) -> None:
    _flag(
        ctx,
        "CRM-1001",
        FlagTerms(
            level="red",
            categories=("physical_violence",),
            restrictions=(Restriction("visits_in_pairs"), Restriction("no_home_visits")),
            handling="Do not visit the home; meet only at council offices, two officers present.",
        ),
        "Assaulted a housing officer during a home visit; police were called.",
        "No home visits. Meet at the civic centre with two officers; keep the exit clear.",
        ("home_visit", ("physical_violence",), "Pushed the officer against a door frame.", False),
    )
    _flag(
        ctx,
        "CRM-1002",
        FlagTerms(
            level="amber",
            categories=("persistent_complainer",),
            restrictions=(
                Restriction("writing_only"),
                Restriction("time_limited_calls", "10 minutes"),
            ),
            adjustments=("Reply by letter in large print",),
        ),
        "Over 200 calls in three months on a complaint already closed at every stage.",
        "Answer in writing only; calls put through are limited to 10 minutes.",
        ("phone", ("unreasonable_persistence",), "Fortieth call this month, same matter.", True),
    )
    appealed = _flag(
        ctx,
        "CRM-1003",
        FlagTerms(
            level="amber",
            categories=("verbal_hate_abuse",),
            restrictions=(Restriction("single_point_of_contact"),),
        ),
        "Repeated racist abuse of contact-centre staff by telephone.",
        "Route all contact to the named officer; end any call where abuse starts.",
        ("phone", ("aggressive_or_abusive",), "Racist abuse after a polite warning.", True),
    )
    appeals.lodge(
        ctx.acting_as(personas.holding(ctx.settings, "appeal.lodge", "case_officer").person),
        appealed.id,
        grounds="The customer says the calls were misheard.",
    )
    subjects.get_or_create(ctx.session, "customer", "CRM-1004")
    linker = personas.holding(ctx.settings, "subject.link", "case_officer")
    subjects.link(ctx.acting_as(linker.person), "CRM-1001", "100023336956")


def seed(settings: Settings) -> str:
    """Add the demo subjects and flags if absent; return what to open next."""
    database = Database(settings.database_url)
    keyring = KeyRing.load(KeyFiles.of(settings.instance_dir).data_keys)
    try:
        with database.transaction() as session:
            first = session.scalars(
                select(Subject).where(Subject.kind == "customer", Subject.ref == "CRM-1001")
            ).first()
            if first is None or not first.flags:
                officer = personas.holding(settings, "flag.propose", "case_officer").person
                _seed_flags(ServiceContext(session, settings, keyring, officer))
            for kind, ref in DEMO_SUBJECTS:
                subjects.get_or_create(session, kind, ref)
    finally:
        database.dispose()
    base = settings.deployment.public_url
    return (
        f"demo data ready\n"
        f"  demo CRM page: {base}/demo/crm (red, amber, appeal, no-flag and error examples)\n"
        f"  readiness:     {base}/readyz\n"
        f"  sample launch: forewarn token --user demo.agent --name 'Demo Agent' --roles agent"
    )
