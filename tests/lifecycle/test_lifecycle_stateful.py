"""Random walks through the lifecycle (Hypothesis stateful) that try to break its invariants.

Each step goes through the real services on a real database; refused steps roll back.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from itertools import count

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from sidecar.lookup import cache as status_cache
from sidecar.lookup.cache import StatusCache
from sidecar.lookup.service import banner_status, subject_status
from sidecar.register import appeals, flags, notices, reviews
from sidecar.register.case_models import (
    Appeal,
    FlagEvent,
    HistoryIsImmutable,
    Notice,
    PanelDecision,
    Review,
    ReviewAssignment,
)
from sidecar.register.context import ServiceContext
from sidecar.register.models import Flag, Subject
from sidecar.register.rules import PANEL_ROLES, FlagTerms, Refusal, Restriction, State
from sidecar.register.staff import Person, remember
from sidecar.register.status import banner_flags
from sidecar.runtime import Runtime
from sidecar.storage.database import utcnow

CSM, SM, HS = PANEL_ROLES
PEOPLE = [
    Person("p.csm", "Cara", (CSM,)),
    Person("p.sm", "Sam", (SM,)),
    Person("p.hs", "Hal", (HS,)),
    Person("p.csm.sm", "Both", (CSM, SM)),
    Person("p.all", "All", (CSM, SM, HS)),
    Person("p.hs.dir", "Hybrid", (HS, "service_director")),
    Person("p.officer", "Olive", ("case_officer",)),
]
DIRECTORS = [
    Person("d.one", "Dir One", ("service_director",)),
    Person("d.two", "Dir Two", ("service_director",)),
    Person("p.hs.dir", "Hybrid", (HS, "service_director")),
]
MANAGERS = ["p.sm", "p.csm", "d.one"]
TRIOS = [
    ((PEOPLE[0], CSM), (PEOPLE[1], SM), (PEOPLE[2], HS)),
    ((PEOPLE[4], CSM), (PEOPLE[3], SM), (PEOPLE[5], HS)),
    ((PEOPLE[3], CSM), (PEOPLE[4], SM), (PEOPLE[2], HS)),
]
"""Panels of three distinct people, each in a role they hold."""


def build_machine(state: Runtime, cache: StatusCache) -> type[RuleBasedStateMachine]:
    refs = count(1)

    class Lifecycle(RuleBasedStateMachine):
        flag_ids = Bundle("flag_ids")

        def __init__(self) -> None:
            super().__init__()
            self.now = utcnow() - timedelta(days=900)
            self.seen: dict[str, tuple] = {}
            self.proposed = 0

        def context(self, session: Session, actor: Person) -> ServiceContext:
            return ServiceContext(session, state.settings, state.keyring, actor).at(self.now)

        def attempt(self, actor: Person, action: Callable[[ServiceContext], object]) -> None:
            """Run one service call in its own transaction; a refusal rolls it back."""
            try:
                with state.database.transaction() as session:
                    action(self.context(session, actor))
            except Refusal:
                pass

        @initialize()
        def directory(self) -> None:
            with state.database.transaction() as session:
                for person in PEOPLE + DIRECTORS:
                    remember(session, person.id, person.name, person.roles)

        # A few flags per walk, so that the other rules keep meeting the same ones.
        @precondition(lambda self: self.proposed < 3)
        @rule(
            target=flag_ids,
            proposer=st.sampled_from(PEOPLE),
            manager=st.sampled_from(MANAGERS),
            level=st.sampled_from(["amber", "red"]),
        )
        def propose(self, proposer: Person, manager: str, level: str) -> str:
            with state.database.transaction() as session:
                flag = flags.propose(
                    self.context(session, proposer),
                    flags.Proposal(
                        kind="customer",
                        ref=f"CRM-H{next(refs)}",
                        terms=FlagTerms(
                            level, ("verbal_hate_abuse",), (Restriction("writing_only"),)
                        ),
                        reason="reason",
                        control_measures="measures",
                        responsible_manager=manager,
                    ),
                )
                self.proposed += 1
                return flag.id

        @rule(
            flag_id=flag_ids,
            member=st.sampled_from(PEOPLE),
            role=st.sampled_from(PANEL_ROLES),
            decision=st.sampled_from(["approve", "approve", "approve", "reject"]),
        )
        def panel(self, flag_id: str, member: Person, role: str, decision: str) -> None:
            assessment = flags.Assessment("high", "often", "fair", "none")
            self.attempt(
                member,
                lambda ctx: flags.decide_panel(ctx, flag_id, role, decision, assessment),
            )

        @rule(flag_id=flag_ids, trio=st.sampled_from(TRIOS))
        def full_panel(self, flag_id: str, trio: tuple) -> None:
            assessment = flags.Assessment("high", "often", "fair", "none")
            for member, role in trio:
                self.attempt(
                    member,
                    lambda ctx, role=role: flags.decide_panel(
                        ctx, flag_id, role, "approve", assessment
                    ),
                )

        @rule(
            flag_id=flag_ids,
            method=st.sampled_from(["letter", "withheld"]),
            director=st.sampled_from([*DIRECTORS, PEOPLE[1]]),
            issuer=st.sampled_from([PEOPLE[0], PEOPLE[6]]),
            complete=st.booleans(),
        )
        def notice(
            self, flag_id: str, method: str, director: Person, issuer: Person, complete: bool
        ) -> None:
            self.attempt(
                issuer,
                lambda ctx: notices.issue_notice(
                    ctx,
                    flag_id,
                    method,
                    legal_guidance_ref="LEGAL-1" if complete else None,
                    director_permission_by=director.id,
                    reason="risk",
                ),
            )

        @rule(
            flag_id=flag_ids,
            lodger=st.sampled_from([PEOPLE[6], PEOPLE[0]]),
            handler=st.sampled_from([None, "p.sm", "d.two"]),
        )
        def appeal(self, flag_id: str, lodger: Person, handler: str | None) -> None:
            # Only the Customer Support Manager may name the handler, and only a Senior Manager.
            self.attempt(
                lodger,
                lambda ctx: appeals.lodge(ctx, flag_id, handling_manager=handler),
            )

        @rule(
            flag_id=flag_ids,
            director=st.sampled_from(DIRECTORS),
            outcome=st.sampled_from(["upheld", "varied", "removed"]),
        )
        def decide_appeal(self, flag_id: str, director: Person, outcome: str) -> None:
            def act(ctx: ServiceContext) -> None:
                pending = ctx.session.scalars(
                    select(Appeal).where(Appeal.flag_id == flag_id, Appeal.outcome.is_(None))
                ).first()
                if pending is None:
                    return
                appeals.decide(ctx, flag_id, pending.id, outcome, "because")

            self.attempt(director, act)

        @rule(
            flag_id=flag_ids,
            assigner=st.sampled_from([PEOPLE[0], PEOPLE[3]]),
            reviewer=st.sampled_from(PEOPLE[:2]),
        )
        def assign_review(self, flag_id: str, assigner: Person, reviewer: Person) -> None:
            self.attempt(
                assigner,
                lambda ctx: reviews.assign_reviewers(ctx, flag_id, [reviewer.id]),
            )

        @rule(
            flag_id=flag_ids,
            reviewer=st.sampled_from(PEOPLE[:2]),
            outcome=st.sampled_from(["continue", "vary", "remove"]),
        )
        def review(self, flag_id: str, reviewer: Person, outcome: str) -> None:
            self.attempt(
                reviewer,
                lambda ctx: reviews.record_review(ctx, flag_id, outcome, "notes"),
            )

        @rule(flag_id=flag_ids)
        def withdraw(self, flag_id: str) -> None:
            self.attempt(PEOPLE[0], lambda ctx: flags.withdraw(ctx, flag_id, "why"))

        @rule(days=st.integers(min_value=1, max_value=60))
        def time_passes(self, days: int) -> None:
            self.now += timedelta(days=days)

        @rule(flag_id=flag_ids)
        def rewrite_history(self, flag_id: str) -> None:
            with pytest.raises(HistoryIsImmutable), state.database.transaction() as session:
                for event in session.scalars(select(FlagEvent).where(FlagEvent.flag_id == flag_id)):
                    event.why = "nothing happened"

        @invariant()
        def no_active_flag_without_three_distinct_approvals(self) -> None:
            with state.database.transaction() as session:
                for flag in session.scalars(select(Flag).where(Flag.state == "active")):
                    approvals = session.execute(
                        select(PanelDecision.role, PanelDecision.decided_by).where(
                            PanelDecision.flag_id == flag.id, PanelDecision.decision == "approve"
                        )
                    ).all()
                    assert {role for role, _ in approvals} == set(PANEL_ROLES)
                    assert len({person for _, person in approvals}) == 3

        @invariant()
        def every_review_was_assigned_to_its_reviewer(self) -> None:
            with state.database.transaction() as session:
                for review in session.scalars(select(Review)):
                    assignment = session.get(ReviewAssignment, review.assignment_id)
                    assert assignment is not None
                    assert assignment.reviewer == review.reviewed_by != assignment.assigned_by

        @invariant()
        def no_appeal_decided_by_an_involved_director(self) -> None:
            with state.database.transaction() as session:
                for appeal in session.scalars(select(Appeal).where(Appeal.decided_by.is_not(None))):
                    flag = session.get(Flag, appeal.flag_id)
                    notice = session.scalars(
                        select(Notice).where(Notice.flag_id == flag.id)
                    ).first()
                    involved = {flag.proposed_by, flag.responsible_manager}
                    involved |= set(
                        session.scalars(
                            select(PanelDecision.decided_by).where(PanelDecision.flag_id == flag.id)
                        )
                    )
                    involved |= set(
                        session.scalars(
                            select(Appeal.handling_manager).where(Appeal.flag_id == flag.id)
                        )
                    )
                    if notice is not None:
                        involved |= {notice.director_permission_by, notice.issued_by}
                    assert appeal.decided_by not in involved

        @invariant()
        def every_active_flag_is_notified_or_reported(self) -> None:
            with state.database.transaction() as session:
                reported = {
                    item["id"]
                    for item in reviews.notices_overdue(session, state.settings, self.now)
                }
                days = state.settings.policy.notice_due_days
                for flag in session.scalars(select(Flag).where(Flag.state == "active")):
                    notified = session.scalars(
                        select(Notice).where(Notice.flag_id == flag.id)
                    ).first()
                    if notified is not None:
                        assert notified.method in ("letter", "withheld")
                        if notified.method == "withheld":
                            assert notified.legal_guidance_ref and notified.director_permission_by
                    elif self.now > flag.activated_at + timedelta(days=days):
                        assert flag.id in reported

        @invariant()
        def no_history_record_ever_changes(self) -> None:
            with state.database.transaction() as session:
                current = {
                    e.id: (
                        e.flag_id,
                        e.seq,
                        e.at,
                        e.actor_id,
                        e.action,
                        e.from_state,
                        e.to_state,
                        e.why,
                    )
                    for e in session.scalars(select(FlagEvent))
                }
            for event_id, snapshot in self.seen.items():
                assert current.get(event_id) == snapshot
            self.seen = current

        @invariant()
        def the_banner_shows_exactly_the_active_flags(self) -> None:
            with state.database.transaction() as session:
                for flag in session.scalars(select(Flag)):
                    shown = {f["id"] for f in banner_flags(session, state.settings, flag.subject)}
                    assert (flag.id in shown) == (flag.state == State.ACTIVE.value)

        @invariant()
        def the_cached_banner_is_what_the_register_says_now(self) -> None:
            """The banner's cache, kept across the whole walk, never serves an old status."""
            with state.database.transaction() as session:
                subjects = [(s.kind, s.ref) for s in session.scalars(select(Subject))]
            for kind, ref in subjects:
                cached = banner_status(state.database, cache, state.settings, kind, ref)
                with state.database.transaction() as session:
                    assert cached == subject_status(session, state.settings, kind, ref)

    return Lifecycle


def test_lifecycle_invariants_hold_on_random_walks(app) -> None:
    machine = build_machine(app.extensions["forewarn"], status_cache.of(app))
    run_state_machine_as_test(
        machine,
        settings=settings(
            # The walks share one database, so a saved walk would not replay the same way.
            database=None,
            max_examples=20,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
