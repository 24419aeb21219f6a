"""The flag lifecycle as rules: states, transitions, who may act, and the policy's checks.

Pure Python: no Flask, no SQL. The services load facts from storage, ask these functions,
and store what they answer; every rule that protects a person or a member of staff is here.
"""

from __future__ import annotations

import calendar
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any


class State(StrEnum):
    PROPOSED = "proposed"
    ACTIVE = "active"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    REMOVED = "removed"
    EXPIRED = "expired"


ENDED = frozenset({State.REJECTED, State.WITHDRAWN, State.REMOVED, State.EXPIRED})
"""States a flag never leaves."""


class Action(StrEnum):
    PANEL_DECISION = "panel_decision"
    WITHDRAW = "withdraw"
    NOTICE = "notice"
    APPEAL = "appeal"
    APPEAL_DECISION = "appeal_decision"
    REVIEW = "review"
    EXPIRE = "expire"


ALLOWED: Mapping[State, tuple[Action, ...]] = {
    State.PROPOSED: (Action.PANEL_DECISION, Action.WITHDRAW),
    State.ACTIVE: (
        Action.NOTICE,
        Action.APPEAL,
        Action.APPEAL_DECISION,
        Action.REVIEW,
        Action.WITHDRAW,
        Action.EXPIRE,
    ),
    State.REJECTED: (),
    State.WITHDRAWN: (),
    State.REMOVED: (),
    State.EXPIRED: (),
}
"""What may happen to a flag in each state; everything else is refused."""

PANEL_ROLES = ("customer_support_manager", "senior_manager", "hs_manager")
"""Eastleigh's case review panel, the default: all three must approve, as three distinct people."""

LETTER_SIGNATORY_ROLE = "customer_support_manager"

APPEAL_OUTCOMES = ("upheld", "varied", "removed")
REVIEW_OUTCOMES = ("continue", "vary", "remove")
TRIAGE_OUTCOMES = (
    "no_further_action",
    "monitor",
    "refer_to_case_review",
    "refer_to_police",
    "legal_action",
)
REFERENCED_OUTCOMES = frozenset({"refer_to_police", "legal_action"})
"""Outcomes recorded with the other body's reference (a crime number, a legal case number):
Eastleigh and Workington report to the police or take legal action, possibly without warning."""
PEOPLE_KINDS = {"staff": "Staff", "councillor": "Councillor", "contractor": "Contractor"}
"""Whom a customer's behaviour is towards (Eastleigh 4, Workington 1): who reported an
incident, and whom a flag protects. Staff report as themselves; a councillor or contractor
is named, sealed, by whoever records it."""
PROTECTED_LABELS = {"staff": "Staff", "councillor": "Councillors", "contractor": "Contractors"}
"""Whom a flag protects, as its readers read it."""

TRIAGE_CONSIDERATIONS = ("channel", "circumstances", "known_to_council", "support_needs")
"""York's manager considerations, each recorded before a triage outcome."""


class Refusal(Exception):
    """A rule said no. `kind` says how: conflict (state), forbidden (who), invalid (input)."""

    kind = "invalid"

    def __init__(self, message: str, **facts: Any) -> None:
        super().__init__(message)
        self.message = message
        self.facts = facts


class Conflict(Refusal):
    kind = "conflict"


class Forbidden(Refusal):
    kind = "forbidden"


class Invalid(Refusal):
    kind = "invalid"


class NotFound(Refusal):
    kind = "not_found"


def require(state: str, action: Action) -> None:
    """Refuse an action the flag's state does not allow, naming what is allowed."""
    current = State(state)
    allowed = ALLOWED[current]
    if action in allowed:
        return
    listed = ", ".join(a.value for a in allowed) or "none (the flag has ended)"
    raise Conflict(
        f"cannot {action.value} a flag that is {current.value}; "
        f"allowed from {current.value}: {listed}",
        state=current.value,
        allowed=[a.value for a in allowed],
    )


# Panel -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PanelVote:
    role: str
    user_id: str
    decision: str  # "approve" | "reject"


@dataclass(frozen=True)
class Seats:
    """Who decides together (the settings' panel or appeal deciders): the roles that sit,
    each once and each a different person; how many must agree; whose agreement is always
    needed."""

    roles: tuple[str, ...]
    needed: int
    required: tuple[str, ...] = ()
    name: str = "panel"

    @classmethod
    def of(cls, panel: Any) -> Seats:
        """The settings' `[panel]` section as seats."""
        return cls(
            tuple(panel.roles),
            panel.approvals_needed,
            tuple(panel.required_roles),
        )

    def reached(self, agreed: Mapping[str, str]) -> bool:
        """Whether these agreeing seats (role -> person) make the decision."""
        return (
            len(agreed) >= self.needed
            and len(set(agreed.values())) >= self.needed
            and all(role in agreed for role in self.required)
        )

    def reachable(self, agreed: Mapping[str, str], decided: Collection[str]) -> bool:
        """Whether the seats still undecided could complete this agreement."""
        open_seats = [role for role in self.roles if role not in decided]
        required_lost = any(role in decided and role not in agreed for role in self.required)
        return not required_lost and len(agreed) + len(open_seats) >= self.needed

    def describe(self) -> str:
        """What made the decision, in words: "all three panel roles approved"."""
        seats = _number(len(self.roles))
        if self.needed == len(self.roles):
            return f"all {seats} {self.name} roles approved"
        return f"{_number(self.needed)} of the {seats} {self.name} roles approved"


def _number(n: int) -> str:
    words = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
    return words[n] if n < len(words) else str(n)


EASTLEIGH_PANEL = Seats(PANEL_ROLES, len(PANEL_ROLES))


def check_panel_vote(
    votes: Iterable[PanelVote],
    vote: PanelVote,
    user_roles: Collection[str],
    panel: Seats = EASTLEIGH_PANEL,
) -> None:
    """A member decides only in a panel role they hold, once, and in one role only."""
    if vote.role not in panel.roles:
        raise Invalid(
            f"role {vote.role!r} is not a panel role; panel roles: {', '.join(panel.roles)}"
        )
    if vote.decision not in ("approve", "reject"):
        raise Invalid(f"decision must be approve or reject, not {vote.decision!r}")
    if vote.role not in user_roles:
        raise Forbidden(f"you do not hold the role {vote.role} you are deciding in")
    for earlier in votes:
        if earlier.user_id == vote.user_id:
            raise Conflict(
                f"you already decided on this flag as {earlier.role}; the panel is "
                f"{_number(len(panel.roles))} distinct people"
            )
        if earlier.role == vote.role:
            raise Conflict(f"the {vote.role} has already decided on this flag")


def panel_outcome(votes: Iterable[PanelVote], panel: Seats = EASTLEIGH_PANEL) -> State:
    """Active once the approvals the panel needs are in (from distinct people where it says
    so); rejected once rejections leave them out of reach (by default: any rejection)."""
    votes = list(votes)
    approvals = {v.role: v.user_id for v in votes if v.decision == "approve"}
    if panel.reached(approvals):
        return State.ACTIVE
    if not panel.reachable(approvals, {v.role for v in votes}):
        return State.REJECTED
    return State.PROPOSED


def awaiting_roles(votes: Iterable[PanelVote], panel: Seats = EASTLEIGH_PANEL) -> list[str]:
    decided = {v.role for v in votes}
    return [role for role in panel.roles if role not in decided]


# Dates -------------------------------------------------------------------------------------


def add_months(day: date, months: int) -> date:
    """The same day `months` later, clamped to the month's end (31 Jan + 1 = 28/29 Feb)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def appeal_deadline(notice_day: date, window_days: int) -> date:
    """The last day an appeal is in time: the notice day plus the window."""
    return notice_day + timedelta(days=window_days)


def check_appeal_in_time(notice_day: date | None, received_on: date, window_days: int) -> None:
    """Refuse an appeal received after the window closed; none closes before a notice."""
    if notice_day is None:
        return
    closed = appeal_deadline(notice_day, window_days)
    if received_on > closed:
        raise Conflict(
            f"the appeal window closed on {closed.isoformat()} "
            f"({window_days} days from the notice of {notice_day.isoformat()})",
            window_closed=closed.isoformat(),
        )


def review_standing(review_due: date | None, today: date, soon_days: int) -> str | None:
    """ "overdue" once past the date, "due" within `soon_days` of it, else None."""
    if review_due is None:
        return None
    if review_due < today:
        return "overdue"
    if review_due <= today + timedelta(days=soon_days):
        return "due"
    return None


def notice_overdue(
    activated_at: datetime | None, has_notice: bool, now: datetime, days: int
) -> bool:
    """An active flag without a notice or recorded exception after `days` must be reported."""
    return activated_at is not None and not has_notice and now > activated_at + timedelta(days=days)


def purge_due(ended_at: datetime | None, purged: bool, now: datetime, months: int) -> bool:
    if ended_at is None or purged:
        return False
    return add_months(ended_at.date(), months) <= now.date()


def expired(ends_on: date | None, today: date) -> bool:
    return ends_on is not None and ends_on < today


# Notice ------------------------------------------------------------------------------------


def withheld_missing(
    legal_guidance_ref: str | None, director_permission_by: str | None, reason: str | None
) -> list[str]:
    """The exception's parts that are absent: all three are needed to withhold a letter."""
    given = {
        "legal_guidance_ref": legal_guidance_ref,
        "director_permission_by": director_permission_by,
        "reason": reason,
    }
    return [name for name, value in given.items() if not (value and value.strip())]


def letter_signatory(
    issuer_id: str,
    issuer_roles: Collection[str],
    votes: Iterable[PanelVote],
    role: str = LETTER_SIGNATORY_ROLE,
    title: str = "Customer Support Manager",
) -> str:
    """Letters are signed in one role (by default a Customer Support Manager): the issuer if
    they hold it, else the panel member who approved in it."""
    if role in issuer_roles:
        return issuer_id
    for vote in votes:
        if vote.role == role and vote.decision == "approve":
            return vote.user_id
    raise Invalid(
        f"a decision letter is signed by a {title}: issue it as one "
        f"(this flag has no panel {title} to sign it)"
    )


# Appeals -----------------------------------------------------------------------------------


def check_director_may_decide(
    user_id: str,
    involvement: Mapping[str, Collection[str]],
    title: str = "Service Director",
) -> None:
    """An appeal goes to a director with no prior involvement in the case (Eastleigh 31).

    Any relation counts: proposer, responsible manager, panel member, the handling Senior
    Manager, the director who permitted a withheld notice, a reviewer, an earlier appeal's
    decider, the reporter of one of its incidents, the manager who triaged one, or whoever
    lodged an appeal. Who holds the power to decide at all is the access policy's concern.
    """
    relations = sorted(involvement.get(user_id, ()))
    if relations:
        raise Forbidden(
            f"a {title} with prior involvement in the case cannot decide its appeal "
            f"(you were: {', '.join(r.replace('_', ' ') for r in relations)})",
            involvement=relations,
        )


# Changes -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Restriction:
    code: str
    note: str = ""
    ends_on: date | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "note": self.note,
            "ends_on": self.ends_on.isoformat() if self.ends_on else None,
        }


@dataclass(frozen=True)
class FlagTerms:
    """What a flag imposes, as the banner and the CRM see it."""

    level: str
    categories: tuple[str, ...]
    restrictions: tuple[Restriction, ...] = ()
    handling: str = ""
    ends_on: date | None = None
    adjustments: tuple[str, ...] = ()
    """The reasonable adjustments staff must make, each an instruction for every reader
    ("contact by letter in large print"); the detail behind them is sealed elsewhere."""


def check_terms(
    terms: FlagTerms,
    levels: Collection[str],
    categories: Collection[str],
    restrictions: Collection[str],
    today: date,
) -> None:
    """Every code must be in its catalogue; a flag has at least one category."""
    problems = []
    if terms.level not in levels:
        problems.append(f"unknown level {terms.level!r}; levels: {', '.join(levels)}")
    if not terms.categories:
        problems.append("a flag needs at least one category")
    for code in terms.categories:
        if code not in categories:
            problems.append(f"unknown category {code!r}")
    if len(set(terms.categories)) != len(terms.categories):
        problems.append("a category is listed twice")
    for item in terms.restrictions:
        if item.code not in restrictions:
            problems.append(f"unknown restriction {item.code!r}")
        if item.ends_on is not None and item.ends_on < today:
            problems.append(f"restriction {item.code!r} ends in the past ({item.ends_on})")
    if terms.ends_on is not None and terms.ends_on <= today:
        problems.append(f"ends_on {terms.ends_on} is not in the future")
    if problems:
        raise Invalid("; ".join(problems), problems=problems)


def current_restrictions(
    restrictions: Iterable[Mapping[str, Any]], today: date
) -> list[Mapping[str, Any]]:
    """Restrictions still in force today (each may end on its own date)."""
    kept = []
    for item in restrictions:
        ends = item.get("ends_on")
        if ends and date.fromisoformat(ends) < today:
            continue
        kept.append(item)
    return kept


def highest_level(levels: Iterable[str], order: tuple[str, ...]) -> str | None:
    present = set(levels)
    for level in reversed(order):
        if level in present:
            return level
    return None
