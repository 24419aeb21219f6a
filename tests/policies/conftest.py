"""The lifecycle's signed-in staff and case drivers, for the policy modules."""

from tests.lifecycle.conftest import cases, staff  # noqa: F401
