"""Every table of the app: importing this module registers them all with the metadata."""

from __future__ import annotations

from sidecar.audit import models as audit_models
from sidecar.identity import models as identity_models
from sidecar.lookup import models as lookup_models
from sidecar.notify import models as notify_models
from sidecar.register import case_models, models
from sidecar.storage.database import Base, Confidential
from sidecar.sync import models as sync_models

# Each domain keeps its tables beside its services; these imports register them all.
TABLE_MODULES = (
    audit_models,
    case_models,
    identity_models,
    lookup_models,
    models,
    notify_models,
    sync_models,
)


def confidential_models() -> list[type[Confidential]]:
    """Every mapped class with encrypted columns (for key rotation and leak tests)."""
    return [
        mapper.class_
        for mapper in Base.registry.mappers
        if issubclass(mapper.class_, Confidential) and mapper.class_.__encrypted__
    ]
