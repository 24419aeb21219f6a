"""How every HTTP endpoint is declared: its permission, its input schemas and its docs."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

from flask import Blueprint, Flask, g, request
from flask_login import current_user
from pydantic import BaseModel, ConfigDict, ValidationError

from sidecar.audit import writer as audit
from sidecar.errors import Problem
from sidecar.policy import access

INT_PARAM_MAX = 2**31 - 1
"""The largest number a route's `<int:...>` part accepts; larger names nothing (404)."""


class Input(BaseModel):
    """Base of request bodies and queries: unknown fields are refused, never ignored."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


@dataclass(frozen=True)
class Endpoint:
    """What a route declares; the OpenAPI document and the access tests read these."""

    rule: str
    methods: tuple[str, ...]
    summary: str
    action: str | None
    tags: tuple[str, ...] = ()
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    responses: dict[int, str] = field(default_factory=dict)
    confidential: bool = False


AuthorizeHook = Callable[[Endpoint], None]


def _field_errors(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {
            "field": ".".join(str(part) for part in err["loc"]) or "(body)",
            "message": err["msg"].removeprefix("Value error, "),
        }
        for err in exc.errors()
    ]


# C0 controls but tab, line feed and carriage return, DEL, and the C1 controls: nothing a
# person types, and NUL or a stray escape breaks logs, letters, CSV exports and CRMs.
CONTROL_CHARACTERS = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
"""As a regular expression's character range (the OpenAPI document states it too)."""
_CONTROL = re.compile(f"[{CONTROL_CHARACTERS}]")


def has_control_characters(text: str) -> bool:
    """Whether free text holds a character nobody types (the API's and console's one check)."""
    return _CONTROL.search(text) is not None


def _control_characters(data: Any, path: tuple[str, ...] = ()) -> list[dict[str, str]]:
    """A field error for every string (name or value) holding a control character."""
    here = ".".join(path) or "(body)"
    if isinstance(data, str):
        return [{"field": here, "message": CONTROL_MESSAGE}] if has_control_characters(data) else []
    errors = []
    if isinstance(data, dict):
        for key, value in data.items():
            if has_control_characters(str(key)):
                errors.append({"field": here, "message": f"a field name {CONTROL_MESSAGE}"})
            else:
                errors += _control_characters(value, (*path, str(key)))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            errors += _control_characters(value, (*path, str(index)))
    return errors


CONTROL_MESSAGE = "must not contain control characters (only tab and line breaks)"


def _validate(model: type[BaseModel], data: Any, where: str) -> BaseModel:
    controls = _control_characters(data)
    if controls:
        detail = "; ".join(f"{where} field '{e['field']}': {e['message']}" for e in controls)
        raise Problem(422, "invalid-request", detail, errors=controls)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = _field_errors(exc)
        detail = "; ".join(f"{where} field '{e['field']}': {e['message']}" for e in errors)
        raise Problem(422, "invalid-request", detail, errors=errors) from None


def parse_body(model: type[BaseModel]) -> BaseModel:
    if not request.is_json:
        raise Problem(415, "unsupported-media-type", "send the body as application/json")
    data = request.get_json(silent=True)
    if data is None:
        raise Problem(400, "malformed-json", "the request body is not valid JSON")
    if not isinstance(data, dict):
        raise Problem(422, "invalid-request", "the request body must be a JSON object")
    return _validate(model, data, "body")


def parse_query(model: type[BaseModel]) -> BaseModel:
    data = {key: request.args.get(key) for key in request.args}
    return _validate(model, data, "query")


def endpoint(
    blueprint: Blueprint,
    rule: str,
    *,
    summary: str,
    action: str | None,
    methods: Iterable[str] = ("GET",),
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    responses: dict[int, str] | None = None,
    tags: Iterable[str] = (),
    public: bool = False,
    confidential: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a view with the permission it needs (deny by default).

    `action` names the permission checked before the view runs; only `public=True`
    routes (health, sign-in, static widget files) may omit it. Parsed `body` and
    `query` models are passed to the view as keyword arguments of those names.
    """
    if action is None and not public:
        raise ValueError(f"{rule}: a route must declare its action or be public")
    spec = Endpoint(
        rule=rule,
        methods=tuple(m.upper() for m in methods),
        summary=summary,
        action=action,
        tags=tuple(tags),
        body=body,
        query=query,
        responses=dict(responses or {}),
        confidential=confidential,
    )

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(**kwargs: Any) -> Any:
            if not public:
                authorize(spec)
            if body is not None:
                kwargs["body"] = parse_body(body)
            if query is not None:
                kwargs["query"] = parse_query(query)
            return view(**kwargs)

        wrapper.forewarn_endpoint = spec  # type: ignore[attr-defined]
        blueprint.add_url_rule(rule, view.__name__, wrapper, methods=list(spec.methods))
        return wrapper

    return decorator


def authorize(spec: Endpoint) -> None:
    """Authenticate, then ask the access policy about the route's action."""
    if not current_user.is_authenticated:
        raise Problem(401, "unauthenticated", "sign in first (session or bearer token)")
    decision = access.decide(current_user, spec.action or "", None)
    g.forewarn_decision = decision
    if not decision.allowed:
        audit.record_denied(spec.action or "", decision.basis)
        raise Problem(403, "forbidden", f"not permitted: {decision.basis}")


def endpoints(app: Flask) -> list[tuple[str, Endpoint]]:
    """Every declared endpoint with its endpoint name."""
    found = []
    for name, view in app.view_functions.items():
        spec = getattr(view, "forewarn_endpoint", None)
        if spec is not None:
            found.append((name, spec))
    return found
