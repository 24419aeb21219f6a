"""FHIR fixtures: the register written as the lifecycle leaves it, as the lookup tests have it."""

from tests.lookup.conftest import register

__all__ = ["register"]
