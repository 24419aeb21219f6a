"""The console's way in and out, its files and its headers."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import select

from sidecar import create_app
from sidecar.audit.models import AuditEntry
from sidecar.register.case_models import Appeal
from sidecar.register.models import Flag, Subject
from sidecar.register.personas import personas
from sidecar.settings import ROLES, load_settings
from tests.console.conftest import csrf_token, error_summary, post_form, text
from tests.test_foundation import run_cli

EXAMPLES = Path(__file__).resolve().parents[2] / "config" / "examples"

FRONTEND = Path(__file__).resolve().parents[2] / "sidecar/console/static/govuk-frontend"


def _sign_in_as(client, persona: str, next_path: str = "/"):
    page = client.get(f"/console/sign-in?next={next_path}")
    token = csrf_token(page.get_data(as_text=True))
    return client.post(
        f"/console/sign-in/demo?next={next_path}", data={"csrf_token": token, "persona": persona}
    )


def _audit(app, action: str) -> list[AuditEntry]:
    with app.extensions["forewarn"].database.transaction() as session:
        query = select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)
        return list(session.scalars(query))


def test_the_root_sends_anyone_not_signed_in_to_sign_in(client) -> None:
    reply = client.get("/")
    assert reply.status_code == 302
    assert reply.headers["Location"] == "/console/sign-in?next=/"


def test_the_persona_switcher_lists_a_person_for_every_role(settings, client) -> None:
    page = client.get("/console/sign-in")
    assert page.status_code == 200
    listed = personas(settings)
    assert [p.role for p in listed] == list(ROLES)
    for persona in listed:
        assert f'value="{persona.user_id}"' in page.get_data(as_text=True)
    assert "Chris Moss, Customer Support Manager" in text(page)
    assert "Sign in with your council account" not in text(page)


def _deciding_roles(settings) -> set[str]:
    return {
        *settings.panel.roles,
        *settings.appeals.decider_roles,
        settings.appeals.handler_role,
        settings.lifecycle.letter_signatory_role,
        *filter(None, [settings.lifecycle.withhold_permission_role]),
    }


@pytest.mark.parametrize("council", ["workington", "york-2016", "cabinet-report"])
def test_a_council_s_demo_has_a_persona_for_each_role_its_settings_decide_with(
    council, tmp_path, database_url
) -> None:
    example = EXAMPLES / f"{council}.toml"
    instance = tmp_path / council
    result = run_cli(
        "--config", str(example), "init", "--demo", instance=instance, database_url=database_url
    )
    assert result.returncode == 0, result.stderr
    settings = load_settings(example, instance_dir=instance, database_url=database_url, environ={})
    app = create_app(settings)
    try:
        page = text(app.test_client().get("/console/sign-in"))
        listed = personas(settings)
        for role in _deciding_roles(settings):
            [persona, *_] = [p for p in listed if p.role == role]
            assert f"{persona.name}, {settings.access.role_name(role)}" in page
        # Each panel seat is a different person, as the panel needs.
        seats = [next(p for p in listed if p.role == r).user_id for r in settings.panel.roles]
        assert len(set(seats)) == len(seats)
        # The demo appeal, lodged through the council's own policy, can be decided by its
        # deciders signing in with the switcher: the required first.
        with app.extensions["forewarn"].database.transaction() as session:
            flag_id, appeal_id = session.execute(
                Appeal.__table__.select()
                .with_only_columns(Appeal.flag_id, Appeal.id)
                .join_from(Appeal, Flag, Appeal.flag_id == Flag.id)
                .join(Subject, Flag.subject_id == Subject.id)
                .where(Subject.ref == "CRM-1003", Appeal.outcome.is_(None))
            ).one()
        path = f"/console/flags/{flag_id}/appeals/{appeal_id}/decision"
        appeals = settings.appeals
        required = list(appeals.required_roles)
        order = required + [r for r in appeals.decider_roles if r not in required]
        decision = {"outcome": "upheld", "reasons": "The restriction is needed and fair."}
        for role in order[: appeals.deciders_needed]:
            member = app.test_client()
            persona = next(p for p in listed if p.role == role)
            assert _sign_in_as(member, persona.user_id).status_code == 303
            # A decider whose role need not be uninvolved is offered the form, panel or not.
            assert "Record the decision" in text(member.get(path))
            reply = post_form(member, path, decision)
            assert reply.status_code in (302, 303), error_summary(reply)
        with app.extensions["forewarn"].database.transaction() as session:
            decided = session.get(Appeal, appeal_id)
            assert decided is not None and decided.outcome == "upheld"
    finally:
        app.extensions["forewarn"].database.dispose()


def test_a_persona_signs_in_through_the_shared_sign_in_and_lands_where_asked(app, client) -> None:
    reply = _sign_in_as(client, "demo.hs", "/")
    assert reply.status_code == 303
    assert reply.headers["Location"] == "/"
    home = client.get("/")
    assert home.status_code == 200
    assert "Helen Shaw" in text(home)
    [entry] = _audit(app, "sign_in")
    assert (entry.actor_id, entry.actor_roles, entry.via) == ("demo.hs", "hs_manager", "demo")


@pytest.mark.parametrize(
    "asked",
    [
        "/\t/evil.example/x",
        "/\\evil.example",
        "/\\/evil.example",
        "//evil.example",
        "https://evil.example/",
        "/ /evil.example",
        "/\x00/evil.example",
        "evil.example",
        "/\u3000/evil.example",
    ],
)
def test_a_next_that_could_leave_the_site_lands_on_the_console_home(client, asked) -> None:
    reply = _sign_in_as(client, "demo.hs", quote(asked, safe=""))
    assert reply.status_code == 303
    assert reply.headers["Location"] == "/"


def test_a_local_next_is_kept(client) -> None:
    reply = _sign_in_as(client, "demo.hs", quote("/subjects?kind=customer&ref=CRM-1", safe=""))
    assert reply.headers["Location"] == "/subjects?kind=customer&ref=CRM-1"


@pytest.mark.parametrize("asked", ["/\r\nSet-Cookie:x=y", "/\nx", "/\rx"])
def test_a_next_with_a_line_break_is_refused_before_anyone_is_signed_in(app, client, asked) -> None:
    page = client.get("/console/sign-in")
    reply = client.post(
        f"/console/sign-in/demo?next={quote(asked, safe='')}",
        data={"csrf_token": csrf_token(page.get_data(as_text=True)), "persona": "demo.hs"},
    )
    assert reply.status_code == 400
    assert "line breaks" in text(reply)
    assert client.get("/").status_code == 302
    assert _audit(app, "sign_in") == []


def test_sign_in_without_the_form_token_is_refused_and_signs_no_one_in(client) -> None:
    client.get("/console/sign-in")
    reply = client.post("/console/sign-in/demo", data={"persona": "demo.csm"})
    assert reply.status_code == 400
    assert "Your form could not be sent" in text(reply)
    assert client.get("/").status_code == 302


def test_choosing_no_one_shows_the_error_summary(client) -> None:
    page = client.get("/console/sign-in")
    reply = client.post(
        "/console/sign-in/demo", data={"csrf_token": csrf_token(page.get_data(as_text=True))}
    )
    assert reply.status_code == 422
    assert error_summary(reply) == ["Choose who to sign in as"]
    assert text(reply).startswith("Error: Sign in")


def test_a_persona_not_on_the_list_is_refused_and_recorded(app, client) -> None:
    reply = _sign_in_as(client, "someone.else")
    assert reply.status_code == 422
    assert error_summary(reply) == ["Not a valid choice."]
    assert client.get("/").status_code == 302
    [entry] = _audit(app, "sign_in")
    assert (entry.outcome, entry.actor_id, entry.via) == ("denied", "someone.else", "demo")
    assert "no demo persona" in entry.outcome_reason


def test_an_instance_that_is_not_a_demo_has_no_persona_switcher(make_settings, instance_dir):
    (instance_dir / "DEMO").unlink()
    app = create_app(make_settings())
    try:
        client = app.test_client()
        page = client.get("/console/sign-in")
        assert page.status_code == 200
        assert 'name="persona"' not in page.get_data(as_text=True)
        assert "Single sign-on is not set up" in text(page)
        token = re.search(r'value="([^"]+)"', page.get_data(as_text=True))
        assert token is None
        assert client.post("/console/sign-in/demo", data={"persona": "demo.csm"}).status_code in (
            400,
            404,
        )
    finally:
        app.extensions["forewarn"].database.dispose()


def test_sign_out_ends_the_session_on_the_server(client) -> None:
    _sign_in_as(client, "demo.csm")
    home = client.get("/")
    cookie = client.get_cookie("forewarn_demo_session")
    assert cookie is not None
    reply = client.post(
        "/console/sign-out", data={"csrf_token": csrf_token(home.get_data(as_text=True))}
    )
    assert reply.status_code == 303
    assert "You have signed out" in text(client.get(reply.headers["Location"]))
    assert client.get("/").status_code == 302


def test_sign_out_without_the_form_token_changes_nothing(client) -> None:
    _sign_in_as(client, "demo.csm")
    reply = client.post("/console/sign-out", data={})
    assert reply.status_code == 400
    assert client.get("/").status_code == 200


def test_the_api_still_wants_its_csrf_header_from_a_cookie_session(client) -> None:
    _sign_in_as(client, "demo.officer")
    reply = client.post("/api/v1/incidents", json={})
    assert reply.status_code == 403
    assert reply.get_json()["type"].endswith("csrf-token-missing")


def test_pages_are_not_cached_and_allow_only_their_own_scripts(client) -> None:
    page = client.get("/console/sign-in")
    assert page.headers["Cache-Control"] == "no-store"
    policy = page.headers["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", policy).group(1)
    assert f'<script nonce="{nonce}">' in page.get_data(as_text=True)
    assert "frame-ancestors 'none'" in policy


def test_govuk_frontend_is_served_as_vendored_without_the_govuk_only_font(client) -> None:
    version = (FRONTEND / "VERSION").read_text().strip()
    css = client.get("/console/static/govuk-frontend/govuk-frontend.min.css")
    assert css.status_code == 200
    assert css.mimetype == "text/css"
    assert f'--govuk-frontend-version:"{version}"' in css.get_data(as_text=True)
    assert "@font-face" not in css.get_data(as_text=True)
    assert client.get("/console/static/console.js").mimetype == "text/javascript"
    assert client.get("/assets/images/govuk-crest.svg").status_code == 200


def test_only_the_vendored_files_are_served(client) -> None:
    assert client.get("/console/static/../__init__.py").status_code == 404
    assert client.get("/console/static/nothing.css").status_code == 404
    assert client.get("/assets/fonts/light-94a07e06a1-v2.woff2").status_code == 404
