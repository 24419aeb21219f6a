"""The widget's files, the iframe embed page, the demo CRM page, and CORS for CRM origins."""

from __future__ import annotations

from importlib.resources import files
from typing import Any, Literal

from flask import Blueprint, Response, render_template, request, send_file
from flask_login import current_user
from pydantic import Field
from sqlalchemy import select

from sidecar.api.endpoint import Input, endpoint
from sidecar.api.inputs import REF_FIELD
from sidecar.api.responses import json_response, no_store
from sidecar.errors import Problem
from sidecar.identity.access_tokens import issue_access_token
from sidecar.identity.launch import mint_launch_token
from sidecar.lookup.service import check_subject
from sidecar.register.models import Subject
from sidecar.runtime import current_runtime
from sidecar.storage.keys import KeyFiles

bp = Blueprint("widget", __name__)

ASSETS = {
    "forewarn.js": "text/javascript",
    "embed.js": "text/javascript",
    "demo-crm.js": "text/javascript",
    "demo-crm.css": "text/css",
}
"""The only files served under /widget/."""

CORS_PATHS = ("/api/", "/auth/launch")
"""What the widget calls cross-origin; nothing else answers another origin."""

DEMO_PERSONAS = {
    "visiting_officer": ("demo.visitor", "Dee Visiting Officer", ["visiting_officer"]),
    "agent": ("demo.agent", "Ash Contact Agent", ["agent"]),
}

UNREACHABLE_API = "http://127.0.0.1:47"
"""Where the demo's error example points: a closed privileged port nothing answers on."""


def _settings() -> Any:
    return current_runtime().settings


@bp.after_app_request
def _cors(response: Response) -> Response:
    """Answer cross-origin calls from the configured CRM origins only, with bearer tokens.

    Credentials (cookies) are never allowed cross-origin: the widget holds its token in memory.
    """
    origin = request.headers.get("Origin")
    if not origin or not request.path.startswith(CORS_PATHS):
        return response
    response.vary.add("Origin")
    if origin not in _settings().lookup.crm_origins:
        return response
    response.headers["Access-Control-Allow-Origin"] = origin
    if request.method == "OPTIONS":
        response.headers["Access-Control-Allow-Methods"] = "GET, POST"
        response.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type"
        response.headers["Access-Control-Max-Age"] = "600"
    return response


@endpoint(
    bp,
    "/widget/<name>",
    public=True,
    action=None,
    summary="The widget's script (forewarn.js) and the embed and demo pages' files",
    tags=["widget"],
)
def asset(name: str) -> Any:
    if name not in ASSETS:
        raise Problem(404, "not-found", f"no widget file {name}")
    response = send_file(
        files("widget").joinpath("static", name), mimetype=ASSETS[name], max_age=300
    )
    # CRM pages that isolate themselves (COEP) may still load the script.
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


class SubjectQuery(Input):
    kind: Literal["customer", "property"]
    ref: str = Field(**REF_FIELD)


def _page_headers(response: Response, frame_ancestors: str, connect: str = "'self'") -> Response:
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        f"connect-src {connect}; frame-src 'self'; frame-ancestors {frame_ancestors}; "
        "base-uri 'none'; form-action 'none'"
    )
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return no_store(response)


@endpoint(
    bp,
    "/embed",
    methods=["GET", "POST"],
    public=True,
    action=None,
    query=SubjectQuery,
    summary="The iframe page for CRMs that embed by iframe; launch token by POST or postMessage",
    tags=["widget"],
)
def embed(query: SubjectQuery) -> Any:
    ref = check_subject(query.kind, query.ref, "query")
    token = ""
    if request.method == "POST":
        unknown = sorted(set(request.form) - {"launch_token"})
        if unknown:
            raise Problem(422, "invalid-request", f"form field '{unknown[0]}' is not accepted")
        token = request.form.get("launch_token", "")
    access_token = ""
    if not token and current_user.is_authenticated:
        # Signed in by a session cookie (Salesforce Canvas hands over here): the widget gets a
        # bearer token in the page instead, so it never depends on the cookie reaching the API.
        access_token = issue_access_token(current_user)
    origins = _settings().lookup.crm_origins
    page = render_template(
        "embed.html",
        kind=query.kind,
        ref=ref,
        launch_token=token,
        access_token=access_token,
        allowed_origins=" ".join(origins),
    )
    return _page_headers(Response(page, mimetype="text/html"), " ".join(("'self'", *origins)))


def _demo_only() -> None:
    if not _settings().demo:
        raise Problem(404, "not-found", "the demo pages exist only on a demo instance")


class DemoQuery(Input):
    kind: Literal["customer", "property"] = "customer"
    ref: str | None = Field(None, **REF_FIELD)
    persona: Literal["visiting_officer", "agent"] = "visiting_officer"


@endpoint(
    bp,
    "/demo/crm",
    public=True,
    action=None,
    query=DemoQuery,
    summary="A mock CRM record page embedding the widget both ways (demo instances only)",
    tags=["widget"],
)
def demo_crm(query: DemoQuery) -> Any:
    _demo_only()
    database = current_runtime().database
    with database.transaction() as session:
        subjects = [
            (s.kind, s.ref)
            for s in session.scalars(select(Subject).order_by(Subject.kind, Subject.ref))
        ]
    ref = query.ref or next((r for k, r in subjects if k == query.kind), "")
    if query.ref is not None:
        ref = check_subject(query.kind, ref, "query")
    page = render_template(
        "demo_crm.html",
        kind=query.kind,
        ref=ref,
        persona=query.persona,
        personas={key: value[1] for key, value in DEMO_PERSONAS.items()},
        subjects=subjects,
        council=_settings().deployment.council_name,
        unreachable_api=UNREACHABLE_API,
    )
    return _page_headers(
        Response(page, mimetype="text/html"), "'self'", connect=f"'self' {UNREACHABLE_API}"
    )


class DemoTokenBody(Input):
    persona: Literal["visiting_officer", "agent"] = "visiting_officer"


@endpoint(
    bp,
    "/demo/launch-token",
    methods=["POST"],
    public=True,
    action=None,
    body=DemoTokenBody,
    summary="Mint a launch token for a demo persona, as a CRM host would (demo instances only)",
    tags=["widget"],
)
def demo_launch_token(body: DemoTokenBody) -> Any:
    _demo_only()
    settings = _settings()
    key = KeyFiles.of(settings.instance_dir).launch_demo_key
    if not key.exists():
        raise Problem(404, "not-found", "this instance has no demo launch key")
    user_id, name, roles = DEMO_PERSONAS[body.persona]
    token = mint_launch_token(
        key.read_bytes(),
        settings.deployment.public_url,
        user_id,
        name,
        roles,
        ttl=120,
        issuer=settings.identity.launch_issuer,
    )
    return json_response({"token": token})
