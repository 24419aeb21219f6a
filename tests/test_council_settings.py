"""Who sits on the panel, how many must agree and who decides appeals are settings, refused at
start with the setting named when they cannot work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sidecar.register.rules import PANEL_ROLES, Seats
from sidecar.settings import SettingsError, load_settings

CONFIG = Path(__file__).resolve().parents[1] / "config" / "forewarn.toml"
COUNCIL_ROLES = {"chief_officer": "Chief Officer", "mayor": "Mayor"}


def load(tmp_path: Path, **overrides: Any):
    return load_settings(CONFIG, instance_dir=tmp_path, environ={}, overrides=overrides)


def council_access(tmp_path: Path) -> dict[str, Any]:
    roles = dict(load(tmp_path).access.roles)
    decider = ["banner.read", "flag.read", "panel.decide", "appeal.decide"]
    return {"roles": roles | {"chief_officer": decider, "mayor": decider}} | {
        "council_roles": COUNCIL_ROLES
    }


def test_the_defaults_are_eastleigh_s_panel_of_three_and_one_uninvolved_director(tmp_path):
    settings = load(tmp_path)
    assert settings.panel.roles == PANEL_ROLES
    assert settings.panel.approvals_needed == 3
    assert settings.appeals.decider_roles == ("service_director",)
    assert settings.appeals.deciders_needed == 1
    assert settings.appeals.uninvolved_roles == ("service_director",)
    assert settings.appeals.handler_role == "senior_manager"
    assert settings.lifecycle.withhold_permission_role == "service_director"


@pytest.mark.parametrize(
    ("overrides", "named", "why"),
    [
        (
            {"panel": {"roles": ["customer_support_manager", "mayor"], "approvals_needed": 2}},
            "panel.roles",
            "'mayor' is not a role",
        ),
        ({"panel": {"approvals_needed": 4}}, "panel.approvals_needed", "4 approvals from 3 seats"),
        (
            {"panel": {"required_roles": ["service_director"]}},
            "panel.required_roles",
            "does not sit",
        ),
        ({"panel": {"roles": []}}, "panel.roles", "at least one role"),
        (
            {"panel": {"roles": ["senior_manager", "senior_manager"], "approvals_needed": 1}},
            "panel.roles",
            "listed twice",
        ),
        (
            {"panel": {"approvals_needed": 1, "required_roles": ["senior_manager", "hs_manager"]}},
            "panel.required_roles",
            "more required roles than panel.approvals_needed",
        ),
        (
            {"appeals": {"decider_roles": ["chair"], "uninvolved_roles": []}},
            "appeals.decider_roles",
            "'chair' is not a role",
        ),
        ({"appeals": {"deciders_needed": 2}}, "appeals.deciders_needed", "can never agree"),
        (
            {"appeals": {"uninvolved_roles": ["legal"]}},
            "appeals.uninvolved_roles",
            "does not decide",
        ),
        ({"appeals": {"required_roles": ["legal"]}}, "appeals.required_roles", "does not decide"),
        (
            {"reviews": {"reviewer_roles": ["hs_manager"]}},
            "reviews.reviewer_roles",
            "reviews but does not hold 'review.record'",
        ),
        ({"reviews": {"agreed_with_role": "chair"}}, "reviews.agreed_with_role", "not a role"),
        (
            {"lifecycle": {"letter_signatory_role": "clerk"}},
            "lifecycle.letter_signatory_role",
            "'clerk' is not a role",
        ),
        ({"appeals": {"handler_role": "clerk"}}, "appeals.handler_role", "'clerk' is not a role"),
        (
            {"appeals": {"handler_role": "agent"}},
            "appeals.handler_role",
            "role 'agent' handles appeals but does not hold 'flag.read'",
        ),
        (
            {"lifecycle": {"withhold_permission_role": "mayor"}},
            "lifecycle.withhold_permission_role",
            "'mayor' is not a role",
        ),
        (
            {"lifecycle": {"withhold_permission_role": "senior_manager"}},
            "lifecycle.withhold_permission_role",
            "does not hold 'notice.permit_withheld'",
        ),
        (
            # A role Forewarn knows but the council's table leaves out holds nothing.
            {
                "access": {"roles": {"agent": ["banner.read"], "senior_manager": ["flag.read"]}},
                "appeals": {"decider_roles": ["senior_manager"], "uninvolved_roles": []},
            },
            "lifecycle.withhold_permission_role",
            "role 'service_director' permits withholding a letter but does not hold",
        ),
        ({"policy": {"triage_outcomes": ["caution"]}}, "policy.triage_outcomes", "unknown outcome"),
        ({"access": {"council_roles": {"agent": "Agent"}}}, "access.council_roles", "already one"),
        ({"access": {"council_roles": {"Mayor": "Mayor"}}}, "access.council_roles", "snake_case"),
        (
            {"identity": {"role_map": {"Mayors": "mayor"}}},
            "identity.role_map",
            "unknown role 'mayor'",
        ),
    ],
)
def test_an_inconsistent_setting_is_refused_at_start_naming_it(tmp_path, overrides, named, why):
    with pytest.raises(SettingsError) as refused:
        load(tmp_path, **overrides)
    message = str(refused.value)
    assert f"setting '{named}'" in message
    assert why in message


def test_a_permission_for_a_role_the_council_has_not_named_is_refused(tmp_path):
    with pytest.raises(SettingsError, match="setting 'access.roles': unknown role 'mayor'"):
        load(tmp_path, access={"roles": {"mayor": ["banner.read"]}})


def test_a_council_s_own_roles_sit_on_the_panel_and_decide_appeals(tmp_path):
    settings = load(
        tmp_path,
        access=council_access(tmp_path),
        panel={"roles": ["chief_officer", "mayor"], "approvals_needed": 1},
        appeals={"decider_roles": ["mayor"], "uninvolved_roles": []},
        identity={"role_map": {"Town Mayor": "mayor"}},
    )
    assert settings.access.role_name("mayor") == "Mayor"
    assert settings.access.role_name("hs_manager") == "Health and Safety Manager"
    assert "chief_officer" in settings.access.known_roles


def test_two_of_three_with_the_chief_officer_always_among_them() -> None:
    seats = Seats(("chief_officer", "chair", "mayor"), 2, ("chief_officer",))
    assert seats.reached({"chief_officer": "a", "mayor": "b"})
    assert not seats.reached({"chair": "c", "mayor": "b"})
    assert not seats.reached({"chief_officer": "a", "mayor": "a"})  # one person, two seats
    # The mayor's rejection leaves the chief officer and the chair to decide.
    assert seats.reachable({"chief_officer": "a"}, {"chief_officer", "mayor"})
    # The chief officer's rejection cannot be outvoted.
    assert not seats.reachable({"chair": "c", "mayor": "b"}, {"chief_officer", "chair", "mayor"})
