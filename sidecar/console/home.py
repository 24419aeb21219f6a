"""The console's home with the signed-in person's work queues, and signing in and out."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, redirect, request, url_for
from flask_login import current_user
from wtforms import SelectChoice

from sidecar.console import queues
from sidecar.console.calls import read
from sidecar.console.forms import PersonaForm, SignOutForm, options
from sidecar.console.page import page, render
from sidecar.identity import routes as identity_routes
from sidecar.identity.landing import landing_path
from sidecar.identity.oidc import CLIENT_KEY
from sidecar.identity.signin import record_refusal
from sidecar.identity.signin import sign_in as start_session
from sidecar.identity.user import StaffUser
from sidecar.register.personas import personas
from sidecar.runtime import current_runtime

bp = Blueprint("home", __name__)


def demo_instance() -> bool:
    settings = current_runtime().settings
    return settings.demo and not settings.deployment.production


@page(
    bp,
    "/",
    action="banner.read",
    summary="The console home: the signed-in person's work queues with counts",
)
def home() -> Any:
    found = read(lambda session, _runtime: queues.for_user(session, current_user))
    return render("console/home.html", queues=found, title="Home")


@page(
    bp,
    "/console/sign-in",
    public=True,
    action=None,
    summary="Sign in: single sign-on where configured; the persona switcher on demo instances",
)
def sign_in() -> Any:
    if current_user.is_authenticated:
        return redirect(landing_path(request.args.get("next")))
    form = PersonaForm()
    form.persona.choices = _persona_choices()
    return _sign_in_page(form)


def _persona_choices() -> list[SelectChoice]:
    settings = current_runtime().settings
    return options(
        (p.user_id, f"{p.name}, {settings.access.role_name(p.role)}") for p in personas(settings)
    )


def _sign_in_page(form: PersonaForm, status: int = 200) -> Any:
    return render(
        "console/sign_in.html",
        status=status,
        form=form,
        personas=personas(current_runtime().settings),
        demo=demo_instance(),
        sso=CLIENT_KEY in current_app.extensions,
        next_path=landing_path(request.args.get("next")),
    )


@page(
    bp,
    "/console/sign-in/demo",
    methods=["POST"],
    public=True,
    action=None,
    summary="Sign in as a demo persona (demo instances only), as POST /auth/demo does",
)
def demo_sign_in() -> Any:
    if not demo_instance():
        return render(
            "console/error.html",
            status=404,
            title="Page not found",
            detail="Demo sign-in exists on demo instances only.",
        )
    form = PersonaForm()
    form.persona.choices = _persona_choices()
    if not form.validate_on_submit():
        chosen = form.persona.data if isinstance(form.persona.data, str) else None
        record_refusal("no demo persona of that name was chosen", "demo", chosen or None)
        return _sign_in_page(form, status=422)
    persona = next(
        p for p in personas(current_runtime().settings) if p.user_id == form.persona.data
    )
    landing = landing_path(request.args.get("next"))
    # The same way in as POST /auth/demo: a demo StaffUser through the shared sign-in.
    start_session(StaffUser(persona.user_id, persona.name, (persona.role,), "demo"))
    return redirect(landing, code=303)


@page(
    bp,
    "/console/sign-out",
    methods=["POST"],
    public=True,
    action=None,
    summary="Sign out of the console: ends the session as POST /auth/logout does",
)
def sign_out() -> Any:
    form = SignOutForm()
    if current_user.is_authenticated and form.validate_on_submit():
        provider_logout = identity_routes.sign_out()
        flash("You have signed out.", "success")
        if provider_logout is not None:
            return redirect(provider_logout, code=303)
    return redirect(url_for("console.home.sign_in"), code=303)
