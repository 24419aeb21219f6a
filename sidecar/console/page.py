"""How a console page is declared (its permission, like every API route) and answered in HTML."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from govuk_frontend_wtf.main import wtforms_errors
from govuk_frontend_wtf.wtforms_widgets import GovDateInput
from sqlalchemy.exc import InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

from sidecar.api.endpoint import Endpoint
from sidecar.audit import writer as audit
from sidecar.audit.writer import AuditUnavailable
from sidecar.errors import Problem, http_problem
from sidecar.policy import access
from sidecar.register.rules import Refusal
from sidecar.runtime import current_runtime

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SIGN_IN = "console.home.sign_in"


def page(
    blueprint: Blueprint,
    rule: str,
    *,
    summary: str,
    action: str | None,
    methods: Iterable[str] = ("GET",),
    public: bool = False,
    confidential: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a console page with the permission it needs (deny by default).

    The declaration is the API's own `Endpoint`, so the authorization matrix and the
    OpenAPI document see console pages as they see API routes. Someone not signed in is sent
    to sign in; a refusal is audited as the API audits it and answered with a 403 page.
    State-changing requests that ride on the session cookie must carry the form's CSRF
    token; a request authenticated by an Authorization header cannot be forged by another
    site (it needs a CORS preflight this app never approves), as for the API.
    """
    if action is None and not public:
        raise ValueError(f"{rule}: a console page must declare its action or be public")
    spec = Endpoint(
        rule=rule,
        methods=tuple(m.upper() for m in methods),
        summary=summary,
        action=action,
        tags=("console",),
        responses={200: "text/html"},
        confidential=confidential,
    )

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(**kwargs: Any) -> Any:
            if not public and not current_user.is_authenticated:
                return redirect(url_for(SIGN_IN, next=_here()))
            if not public:
                decision = access.decide(current_user, spec.action or "")
                if not decision.allowed:
                    audit.record_denied(spec.action or "", decision.basis)
                    return render(
                        "console/error.html",
                        status=403,
                        title="You cannot use this page",
                        detail="Your role does not allow this. Ask your manager if you need it.",
                    )
            if request.method not in SAFE_METHODS and by_cookie():
                current_app.extensions["forewarn.csrf"].protect()
            return view(**kwargs)

        wrapper.forewarn_endpoint = spec  # type: ignore[attr-defined]
        blueprint.add_url_rule(rule, view.__name__, wrapper, methods=list(spec.methods))
        return wrapper

    return decorator


def by_cookie() -> bool:
    """Whether the request would be authenticated by the session cookie, not by a header."""
    return "Authorization" not in request.headers


def _here() -> str:
    path = request.full_path if request.query_string else request.path
    return path if request.method in SAFE_METHODS else request.path


def may(action: str) -> bool:
    """Whether the signed-in person holds `action`, for what a page offers them."""
    return current_user.is_authenticated and access.decide(current_user, action).allowed


def error_list(form: Any) -> dict[str, Any]:
    """The error summary's parameters, each linking to the first box of its field.

    govuk-frontend-wtf links a field by its id; a date input's id names its group of three
    boxes, so the link goes to the day box instead, where the Design System points it.
    """
    params = wtforms_errors(form)
    dates = {f"#{f.id}" for f in form if isinstance(f.widget, GovDateInput)}
    for item in params["errorList"]:
        if item["href"] in dates:
            item["href"] += "-day"
    return params


def render(template: str, *, status: int = 200, **context: Any) -> Response:
    """A console page: never cached, since most of them show what only staff may read."""
    response = Response(render_template(template, **context), status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    return response


def nonce() -> str:
    """This response's CSP nonce, for the one inline script GOV.UK's template carries."""
    if "console_nonce" not in g:
        g.console_nonce = secrets.token_urlsafe(16)
    return str(g.console_nonce)


def _headers(response: Response) -> Response:
    # A page that sets its own policy (a letter's print view, with no script at all) keeps it.
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; "
        f"script-src 'self' 'nonce-{nonce()}'; style-src 'self'; img-src 'self'; "
        "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'; object-src 'none'",
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def _error_page(status: int, title: str, detail: str) -> Response:
    return render("console/error.html", status=status, title=title, detail=detail)


def _problem(exc: Problem) -> Response:
    titles = {
        401: "Sign in to continue",
        403: "You cannot do this",
        404: "Page not found",
        409: "This cannot be done now",
        410: "No longer held",
        503: "Sorry, the service is unavailable",
    }
    return _error_page(exc.status, titles.get(exc.status, "There is a problem"), exc.detail)


REFUSED = {"conflict": 409, "forbidden": 403, "invalid": 422, "not_found": 404}


def _refusal(exc: Refusal) -> Response:
    return _problem(Problem(REFUSED[exc.kind], exc.kind, _sentence(exc.message)))


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:]


def _csrf(_exc: CSRFError) -> Response:
    return _error_page(
        400,
        "Your form could not be sent",
        "The page had expired or was not sent from this service. Go back, reload the page "
        "and try again. Nothing was changed.",
    )


def _http(exc: HTTPException) -> Response:
    # A 404 never comes here: the app-wide `_missing` answers every one under /console/.
    return _error_page(exc.code or 500, exc.name, exc.description or exc.name)


def _unavailable(_exc: Exception) -> Response:
    # Never a blank page or "nothing found": the register could not be read or recorded.
    return _error_page(
        503,
        "Sorry, the service is unavailable",
        "The register cannot be used right now, so nothing was shown or changed. Do not assume "
        "there is no warning. Try again shortly.",
    )


def _unexpected(exc: Exception) -> Response:
    current_app.logger.exception("console page failed", exc_info=exc)
    return _error_page(500, "Sorry, there is a problem with the service", "Try again later.")


def install(console: Blueprint) -> None:
    """Headers, template helpers and HTML error pages for every console page."""
    console.after_request(_headers)
    console.register_error_handler(Problem, _problem)
    console.register_error_handler(Refusal, _refusal)
    console.register_error_handler(CSRFError, _csrf)
    console.register_error_handler(HTTPException, _http)
    console.register_error_handler(OperationalError, _unavailable)
    console.register_error_handler(InterfaceError, _unavailable)
    console.register_error_handler(AuditUnavailable, _unavailable)
    console.register_error_handler(Exception, _unexpected)

    console.context_processor(_helpers)
    console.app_errorhandler(404)(_missing)


def _helpers() -> dict[str, Any]:
    return {
        "csp_nonce": nonce,
        "may": may,
        "settings": current_runtime().settings,
        "error_list": error_list,
    }


def _missing(exc: HTTPException) -> Response:
    """A 404 under /console/ is the console's own page, also where no console route matched
    (a mistyped or stale link), so a person never lands on a bare JSON problem."""
    if not request.path.startswith("/console/"):
        return http_problem(exc)
    # Outside the blueprint its template helpers and headers are not applied: give them here.
    return _headers(
        render(
            "console/error.html",
            status=404,
            title="Page not found",
            detail="Check the address, or start from the home page.",
            **_helpers(),
        )
    )
