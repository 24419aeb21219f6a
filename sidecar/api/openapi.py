"""The OpenAPI 3.1 document, built from the routes' own declarations."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, current_app, jsonify

from sidecar.api.endpoint import CONTROL_CHARACTERS, INT_PARAM_MAX, Endpoint, endpoint
from sidecar.api.widget import ASSETS
from sidecar.fhir.resources import CODE_SYSTEMS
from sidecar.identity.sessions import SECURE_COOKIE
from sidecar.register.references import KINDS, REF_PATTERN, UPRN_PATTERN
from sidecar.runtime import current_runtime
from sidecar.settings import Settings

bp = Blueprint("openapi", __name__)

# A Werkzeug rule part: `<name>`, `<int:name>` or `<any(a, b):name>`.
_CONVERTER = re.compile(r"<(?:[a-z]+(?:\([^)>]*\))?:)?([a-z_]+)>")
_INTEGER_PARAM = re.compile(r"<int:([a-z_]+)>")

ROW_ID = {"type": "string", "pattern": "^[0-9a-f]{32}$", "description": "a record's id"}
PATH_SCHEMAS: dict[str, dict[str, Any]] = {
    "kind": {"type": "string", "enum": list(KINDS)},
    "ref": {
        "type": "string",
        "minLength": 1,
        "pattern": REF_PATTERN,
        "description": "CRM reference, or UPRN (leading zeros ignored; not all zeros)",
    },
    "uprn": {"type": "string", "pattern": UPRN_PATTERN, "description": "UPRN, digits only"},
    "name": {"type": "string", "enum": sorted(ASSETS)},
    "code_system": {"type": "string", "enum": list(CODE_SYSTEMS)},
}
"""What each path parameter may be, as the routes check it."""

FREE_TEXT = f"^[^{CONTROL_CHARACTERS}]*$"
"""Every string the server reads refuses control characters but tab and line breaks."""

PROBLEM_SCHEMA = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
    },
}


OPERATION_OUTCOME_SCHEMA = {
    "type": "object",
    "description": "A FHIR R4 OperationOutcome (https://hl7.org/fhir/R4/operationoutcome.html)",
    "required": ["resourceType", "issue"],
    "properties": {
        "resourceType": {"const": "OperationOutcome"},
        "issue": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["severity", "code"],
                "properties": {
                    "severity": {"type": "string"},
                    "code": {"type": "string"},
                    "diagnostics": {"type": "string"},
                },
            },
        },
    },
}


def _schema_ref(model: type, components: dict[str, Any]) -> dict[str, str]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")  # type: ignore[attr-defined]
    for name, definition in schema.pop("$defs", {}).items():
        components[name] = definition
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _path_schema(name: str, integers: set[str]) -> dict[str, Any]:
    if name in integers:
        return {"type": "integer", "minimum": 0, "maximum": INT_PARAM_MAX}
    if name.endswith("_id"):
        return ROW_ID
    return PATH_SCHEMAS.get(name, {"type": "string", "minLength": 1})


def _query_parameters(model: type) -> list[dict[str, Any]]:
    """Each query field with the schema its model enforces (enums, bounds, lengths)."""
    schema = model.model_json_schema()  # type: ignore[attr-defined]
    properties = schema.get("properties", {})
    required = set(schema.get("required", []))
    parameters = []
    for name, field in model.model_fields.items():  # type: ignore[attr-defined]
        key = field.alias or name
        declared = dict(properties.get(key, {"type": "string"}))
        description = declared.pop("description", "") or field.description or ""
        declared.pop("title", None)
        parameters.append(
            {
                "name": key,
                "in": "query",
                "required": key in required,
                "schema": declared,
                "description": description,
            }
        )
    return parameters


def _operation(
    spec: Endpoint, path_params: list[str], integers: set[str], components: dict[str, Any]
) -> dict:
    operation: dict[str, Any] = {
        "summary": spec.summary,
        "tags": list(spec.tags),
        "x-forewarn-action": spec.action,
        "responses": {
            str(code): {"description": text}
            for code, text in (spec.responses or {200: "OK"}).items()
        },
    }
    if "console" in spec.tags:
        # Pages answer people: a redirect (to sign in, or on to the next page after a
        # form), and errors as pages with the GOV.UK error summary, never problem+json.
        operation["responses"].setdefault("3XX", {"description": "Redirect"})
        # A path no page matches is answered by the app's own 404 problem.
        problem = {"schema": {"$ref": "#/components/schemas/Problem"}}
        operation["responses"].setdefault(
            "default",
            {
                "description": "Error page",
                "content": {"text/html": {}, "application/problem+json": problem},
            },
        )
    # FHIR routes answer errors the FHIR way (sidecar/api/fhir.py), everything else RFC 9457.
    error = (
        ("application/fhir+json", "OperationOutcome")
        if "fhir" in spec.tags
        else ("application/problem+json", "Problem")
    )
    operation["responses"].setdefault(
        "default",
        {
            "description": "Error",
            "content": {error[0]: {"schema": {"$ref": f"#/components/schemas/{error[1]}"}}},
        },
    )
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": _path_schema(name, integers)}
        for name in path_params
    ]
    if spec.query is not None:
        parameters += _query_parameters(spec.query)
    if parameters:
        operation["parameters"] = parameters
    if spec.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _schema_ref(spec.body, components)}},
        }
    if spec.action is not None:
        operation["security"] = [{"bearer": []}, {"session": []}]
    for parameter in parameters:
        _without_controls(parameter["schema"])
    return operation


def _without_controls(schema: Any) -> None:
    """Give every string schema with no pattern, enum or format of its own the FREE_TEXT one."""
    if isinstance(schema, dict):
        if schema.get("type") == "string" and not {"pattern", "enum", "const", "format"} & set(
            schema
        ):
            schema["pattern"] = FREE_TEXT
        for value in schema.values():
            _without_controls(value)
    elif isinstance(schema, list):
        for value in schema:
            _without_controls(value)


CATALOGUE_FIELDS: dict[tuple[str, str], str] = {
    ("ProposalBody", "level"): "levels",
    ("ProposalBody", "categories"): "categories",
    ("ProposalBody", "restrictions"): "restrictions",
    ("TermsIn", "level"): "levels",
    ("TermsIn", "categories"): "categories",
    ("TermsIn", "restrictions"): "restrictions",
    ("RestrictionIn", "code"): "restrictions",
    ("IncidentBody", "channel"): "channels",
    ("IncidentBody", "behaviour_types"): "behaviour_types",
    ("GrantBody", "reason_code"): "reason_codes",
    ("DecisionBody", "kind"): "contact_decisions",
}
"""Body fields that take a code of a config/forewarn.toml catalogue, by (model, field)."""


def _state_codes(schema: Any, codes: list[str]) -> None:
    """Put the codes on the plain string schemas a field's schema holds (items, anyOf)."""
    if not isinstance(schema, dict):
        return
    if schema.get("type") == "string":
        schema["enum"] = codes
        schema.pop("pattern", None)
    for key in ("items", "anyOf"):
        value = schema.get(key)
        for part in value if isinstance(value, list) else [value]:
            _state_codes(part, codes)


def _role_fields(settings: Settings) -> dict[tuple[str, str], tuple[str, ...]]:
    """Body fields that take a role, by (model, field): the roles the settings give them."""
    return {
        ("DemoSignInBody", "roles"): settings.access.known_roles,
        ("PanelBody", "role"): tuple(settings.panel.roles),
        ("AppealDecisionBody", "role"): tuple(settings.appeals.decider_roles),
    }


def _configured_rules(components: dict[str, Any]) -> None:
    """What the instance's config adds to the models' own rules: catalogue codes, lengths."""
    settings = current_runtime().settings
    for (model, name), which in CATALOGUE_FIELDS.items():
        field = components.get(model, {}).get("properties", {}).get(name)
        if field is not None:
            _state_codes(field, list(getattr(settings.catalogue, which)))
    for (model, name), codes in _role_fields(settings).items():
        field = components.get(model, {}).get("properties", {}).get(name)
        if field is not None:
            _state_codes(field, list(codes))
    reason = components.get("GrantBody", {}).get("properties", {}).get("reason_text")
    if reason is not None:
        reason["minLength"] = settings.policy.grant_reason_min_length


def build_document() -> dict[str, Any]:
    components: dict[str, Any] = {
        "Problem": PROBLEM_SCHEMA,
        "OperationOutcome": OPERATION_OUTCOME_SCHEMA,
    }
    paths: dict[str, dict[str, Any]] = {}
    for rule in current_app.url_map.iter_rules():
        spec = getattr(current_app.view_functions.get(rule.endpoint), "forewarn_endpoint", None)
        if spec is None:
            continue
        path = _CONVERTER.sub(r"{\1}", rule.rule)
        params = _CONVERTER.findall(rule.rule)
        integers = set(_INTEGER_PARAM.findall(rule.rule))
        for method in spec.methods:
            paths.setdefault(path, {})[method.lower()] = _operation(
                spec, params, integers, components
            )
    _configured_rules(components)
    for name, schema in components.items():
        if name != "Problem":
            _without_controls(schema)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Forewarn",
            "version": "1",
            "description": "Warning-flag register and CRM sidecar. Errors are RFC 9457 problems.",
        },
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "session": {"type": "apiKey", "in": "cookie", "name": SECURE_COOKIE},
            },
        },
    }


@endpoint(
    bp,
    "/api/v1/openapi.json",
    public=True,
    action=None,
    tags=["ops"],
    summary="This OpenAPI 3.1 document",
)
def openapi_document() -> Any:
    return jsonify(build_document())
