"""The lifecycle's rules, without Flask or a database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from sidecar.register.rules import (
    ALLOWED,
    ENDED,
    Action,
    Conflict,
    FlagTerms,
    Forbidden,
    Invalid,
    PanelVote,
    Restriction,
    State,
    add_months,
    check_appeal_in_time,
    check_director_may_decide,
    check_panel_vote,
    check_terms,
    current_restrictions,
    letter_signatory,
    notice_overdue,
    panel_outcome,
    purge_due,
    require,
    review_standing,
    withheld_missing,
)

CSM, SM, HS = "customer_support_manager", "senior_manager", "hs_manager"
TODAY = date(2025, 6, 1)


def test_active_only_after_three_panel_roles_approve_as_three_people() -> None:
    votes = [PanelVote(CSM, "a", "approve"), PanelVote(SM, "b", "approve")]
    assert panel_outcome(votes) is State.PROPOSED
    assert panel_outcome([*votes, PanelVote(HS, "c", "approve")]) is State.ACTIVE
    # The same person in two roles never makes three approvals.
    assert panel_outcome([*votes, PanelVote(HS, "b", "approve")]) is State.PROPOSED


def test_any_rejection_rejects() -> None:
    votes = [PanelVote(CSM, "a", "approve"), PanelVote(SM, "b", "reject")]
    assert panel_outcome(votes) is State.REJECTED


def test_a_member_cannot_decide_twice_or_in_a_second_role() -> None:
    earlier = [PanelVote(CSM, "a", "approve")]
    with pytest.raises(Conflict, match="already decided on this flag as customer_support_manager"):
        check_panel_vote(earlier, PanelVote(SM, "a", "approve"), {CSM, SM})
    with pytest.raises(Conflict, match="the customer_support_manager has already decided"):
        check_panel_vote(earlier, PanelVote(CSM, "b", "approve"), {CSM})


def test_a_member_must_hold_the_role_they_decide_in() -> None:
    with pytest.raises(Forbidden, match="do not hold the role hs_manager"):
        check_panel_vote([], PanelVote(HS, "a", "approve"), {CSM})
    with pytest.raises(Invalid, match="not a panel role"):
        check_panel_vote([], PanelVote("service_director", "a", "approve"), {"service_director"})


def test_wrong_transitions_name_what_is_allowed() -> None:
    with pytest.raises(Conflict) as caught:
        require("proposed", Action.APPEAL)
    assert "allowed from proposed: panel_decision, withdraw" in caught.value.message
    assert caught.value.facts["allowed"] == ["panel_decision", "withdraw"]
    for state in ENDED:
        assert ALLOWED[state] == ()
        with pytest.raises(Conflict, match="the flag has ended"):
            require(state.value, Action.WITHDRAW)


def test_appeal_window_counts_days_from_the_notice() -> None:
    check_appeal_in_time(TODAY, TODAY + timedelta(days=21), 21)
    with pytest.raises(Conflict) as caught:
        check_appeal_in_time(TODAY, TODAY + timedelta(days=22), 21)
    assert caught.value.facts["window_closed"] == "2025-06-22"
    assert "closed on 2025-06-22" in caught.value.message
    with pytest.raises(Conflict, match="closed on 2025-06-15"):
        check_appeal_in_time(TODAY, TODAY + timedelta(days=15), 14)
    check_appeal_in_time(None, TODAY, 21)


def test_any_prior_involvement_bars_a_director_from_the_appeal() -> None:
    for relation in (
        "proposer",
        "responsible_manager",
        "panel_member",
        "withheld_permission",
        "handling_senior_manager",
    ):
        with pytest.raises(Forbidden, match=relation.replace("_", " ")):
            check_director_may_decide("d", {"d": {relation}})
    check_director_may_decide("d", {"someone.else": {"proposer"}})


def test_withholding_a_letter_needs_all_three_parts() -> None:
    assert withheld_missing("LEG-1", "u.dir", "risk of extreme reaction") == []
    assert withheld_missing(None, " ", "why") == ["legal_guidance_ref", "director_permission_by"]
    assert withheld_missing("", None, None) == [
        "legal_guidance_ref",
        "director_permission_by",
        "reason",
    ]


def test_letters_are_signed_by_a_customer_support_manager() -> None:
    votes = [PanelVote(CSM, "c", "approve"), PanelVote(SM, "s", "approve")]
    assert letter_signatory("me", {CSM}, votes) == "me"
    assert letter_signatory("officer", {"case_officer"}, votes) == "c"
    with pytest.raises(Invalid, match="signed by a Customer Support Manager"):
        letter_signatory("officer", {"case_officer"}, [])


def test_review_standing_and_months() -> None:
    assert review_standing(TODAY - timedelta(days=1), TODAY, 30) == "overdue"
    assert review_standing(TODAY + timedelta(days=30), TODAY, 30) == "due"
    assert review_standing(TODAY + timedelta(days=31), TODAY, 30) is None
    assert add_months(date(2025, 1, 31), 1) == date(2025, 2, 28)
    assert add_months(date(2024, 11, 30), 3) == date(2025, 2, 28)
    assert add_months(date(2025, 6, 1), 12) == date(2026, 6, 1)


def test_notice_overdue_and_purge_due() -> None:
    activated = datetime(2025, 6, 1, 9, tzinfo=UTC)
    assert not notice_overdue(activated, False, activated + timedelta(days=14), 14)
    assert notice_overdue(activated, False, activated + timedelta(days=14, seconds=1), 14)
    assert not notice_overdue(activated, True, activated + timedelta(days=90), 14)
    ended = datetime(2023, 1, 10, tzinfo=UTC)
    assert not purge_due(ended, False, datetime(2025, 1, 9, tzinfo=UTC), 24)
    assert purge_due(ended, False, datetime(2025, 1, 10, tzinfo=UTC), 24)
    assert not purge_due(ended, True, datetime(2030, 1, 1, tzinfo=UTC), 24)


def test_terms_must_come_from_the_catalogues() -> None:
    levels, categories, restrictions = ("amber", "red"), {"physical_violence"}, {"writing_only"}
    check_terms(FlagTerms("red", ("physical_violence",)), levels, categories, restrictions, TODAY)
    with pytest.raises(Invalid) as caught:
        check_terms(
            FlagTerms("crimson", ("shouting",), (Restriction("no_phone"),)),
            levels,
            categories,
            restrictions,
            TODAY,
        )
    assert caught.value.facts["problems"] == [
        "unknown level 'crimson'; levels: amber, red",
        "unknown category 'shouting'",
        "unknown restriction 'no_phone'",
    ]
    with pytest.raises(Invalid, match="at least one category"):
        check_terms(FlagTerms("red", ()), levels, categories, restrictions, TODAY)


def test_a_restriction_leaves_the_banner_after_its_own_end_date() -> None:
    items = [
        {"code": "writing_only", "ends_on": "2025-05-31"},
        {"code": "time_limited_calls", "ends_on": "2025-06-01"},
        {"code": "visits_in_pairs", "ends_on": None},
    ]
    kept = [item["code"] for item in current_restrictions(items, TODAY)]
    assert kept == ["time_limited_calls", "visits_in_pairs"]
