"""Every FHIR resource a test sees is checked against the R4B models of `fhir.resources`."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B import get_fhir_model_class


def valid(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource, once its R4B model accepts it (with every contained entry's resource)."""
    model = get_fhir_model_class(resource["resourceType"])
    model.model_validate(resource)
    for entry in resource.get("entry", []):
        valid(entry["resource"])
    return resource
