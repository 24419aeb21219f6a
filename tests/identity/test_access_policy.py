"""The access policy on its own: roles, and the business-need rule for flag details."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sidecar.policy.access import (
    DETAILS_READ,
    FlagResource,
    GrantScope,
    decide_with,
)
from sidecar.settings import ROLE_NAMES, ROLES, Settings, SettingsError, load_settings
from tests.conftest import CONFIG

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@dataclass(frozen=True)
class User:
    id: str
    roles: tuple[str, ...]


@pytest.fixture(scope="module")
def policy_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return load_settings(CONFIG, instance_dir=tmp_path_factory.mktemp("p"), environ={})


def grant(user: str = "u.vo", kind: str = "customer", ref: str = "C1", hours: int = 8):
    return GrantScope("g1", user, kind, ref, NOW + timedelta(hours=hours))


def flag(**kwargs) -> FlagResource:
    return FlagResource(
        **{"flag_id": "f1", "subject_kind": "customer", "subject_ref": "C1", **kwargs}
    )


def details(settings: Settings, user: User, resource=None, now: datetime = NOW):
    return decide_with(settings, user, DETAILS_READ, resource, now=now)


DETAILS_ROLES = {
    "visiting_officer",
    "case_officer",
    "customer_support_manager",
    "senior_manager",
    "hs_manager",
    # An appeal goes to a director who took no part, who must read the case to decide it.
    "service_director",
}


class TestDetailsRule:
    @pytest.mark.parametrize("role", ROLES)
    def test_no_role_alone_opens_details(self, policy_settings, role) -> None:
        decision = details(policy_settings, User("u.x", (role,)), flag())
        assert not decision.allowed
        expected = (
            "no live access grant for this subject and no relationship to the flag"
            if role in DETAILS_ROLES
            else "no role held grants details.request"
        )
        assert decision.basis == expected

    @pytest.mark.parametrize("role", ROLES)
    def test_a_live_grant_opens_details_only_for_roles_that_may_request(
        self, policy_settings, role
    ) -> None:
        user = User("u.vo", (role,))
        decision = details(policy_settings, user, flag(grants=(grant(),)))
        assert decision.allowed is (role in DETAILS_ROLES)
        if decision.allowed:
            assert decision.basis == f"role {role} and grant g1"

    def test_admin_and_auditor_with_a_grant_and_a_relationship_still_get_nothing(
        self, policy_settings
    ) -> None:
        for role in ("admin", "auditor", "privacy_officer"):
            user = User("u.boss", (role,))
            resource = flag(
                grants=(grant("u.boss"),), relations={"u.boss": frozenset({"panel_member"})}
            )
            assert not details(policy_settings, user, resource).allowed

    def test_grant_of_another_subject_does_not_open_this_flag(self, policy_settings) -> None:
        user = User("u.vo", ("visiting_officer",))
        for other in (grant(ref="C2"), grant(kind="property", ref="C1")):
            assert not details(policy_settings, user, flag(grants=(other,))).allowed

    def test_grant_of_another_user_does_not_open_details(self, policy_settings) -> None:
        user = User("u.vo", ("visiting_officer",))
        assert not details(policy_settings, user, flag(grants=(grant("u.someone"),))).allowed

    def test_expired_grant_does_not_open_details(self, policy_settings) -> None:
        user = User("u.vo", ("visiting_officer",))
        resource = flag(grants=(grant(hours=8),))
        assert details(
            policy_settings, user, resource, NOW + timedelta(hours=7, minutes=59)
        ).allowed
        assert not details(policy_settings, user, resource, NOW + timedelta(hours=8)).allowed

    def test_one_live_grant_among_dead_ones_is_enough(self, policy_settings) -> None:
        user = User("u.vo", ("visiting_officer",))
        resource = flag(grants=(grant(hours=-1), grant(ref="C9"), grant()))
        assert details(policy_settings, user, resource).allowed

    @pytest.mark.parametrize(
        "relation",
        ["responsible_manager", "panel_member", "handling_senior_manager", "deciding_director"],
    )
    def test_relationship_to_the_flag_opens_details(self, policy_settings, relation) -> None:
        user = User("u.sm", ("senior_manager",))
        decision = details(policy_settings, user, flag(relations={"u.sm": frozenset({relation})}))
        assert decision == decision.__class__(
            True, f"role senior_manager and relationship {relation}"
        )

    def test_relationship_of_someone_else_or_of_an_unknown_kind_does_not(
        self, policy_settings
    ) -> None:
        user = User("u.sm", ("senior_manager",))
        resource = flag(
            relations={"u.other": frozenset({"panel_member"}), "u.sm": frozenset({"neighbour"})}
        )
        assert not details(policy_settings, user, resource).allowed

    def test_a_relationship_needs_details_request_too(self, policy_settings) -> None:
        # Legal staff may be named on a case, but their role does not read its reasons.
        user = User("u.legal", ("legal",))
        resource = flag(relations={"u.legal": frozenset({"responsible_manager"})})
        assert details(policy_settings, user, resource).basis == (
            "no role held grants details.request"
        )

    def test_a_deciding_director_reads_the_case(self, policy_settings) -> None:
        user = User("u.dir", ("service_director",))
        resource = flag(relations={"u.dir": frozenset({"deciding_director"})})
        decision = details(policy_settings, user, resource)
        assert decision.allowed and decision.basis.endswith("relationship deciding_director")

    def test_details_without_a_flag_resource_are_refused(self, policy_settings) -> None:
        user = User("u.vo", ("visiting_officer",))
        for resource in (None, {"flag_id": "f1"}, "f1"):
            decision = details(policy_settings, user, resource)
            assert decision.basis == "details are decided per flag and none was given"


class TestRolePermissions:
    def test_unknown_action_and_empty_action_are_denied(self, policy_settings) -> None:
        user = User("u.cso", ("customer_support_manager",))
        assert not decide_with(policy_settings, user, "flag.delete_everything").allowed
        assert not decide_with(policy_settings, user, "").allowed

    def test_user_without_roles_is_denied_everything(self, policy_settings) -> None:
        assert not decide_with(policy_settings, User("u.none", ()), "banner.read").allowed

    def test_unknown_role_grants_nothing(self, policy_settings) -> None:
        assert not decide_with(policy_settings, User("u.x", ("superuser",)), "banner.read").allowed

    def test_basis_names_the_role_that_granted(self, policy_settings) -> None:
        user = User("u.a", ("agent", "auditor"))
        assert decide_with(policy_settings, user, "audit.read").basis == "role auditor"

    def test_details_read_is_not_a_role_permission(self, policy_settings) -> None:
        # The rule, not config, guards details: no role may simply hold "details.read".
        assert DETAILS_READ not in {p for ps in policy_settings.access.roles.values() for p in ps}


@pytest.mark.parametrize("role", ["admin", "auditor", "privacy_officer"])
def test_config_may_not_give_oversight_roles_details_request(tmp_path: Path, role) -> None:
    with pytest.raises(SettingsError, match=f"role '{role}' may not hold 'details.request'"):
        load_settings(
            CONFIG,
            instance_dir=tmp_path,
            environ={},
            overrides={"access": {"roles": {role: ["banner.read", "details.request"]}}},
        )


def test_every_role_has_the_name_staff_read_and_no_name_lacks_a_role() -> None:
    assert set(ROLE_NAMES) == set(ROLES)
    assert all(name.strip() for name in ROLE_NAMES.values())
