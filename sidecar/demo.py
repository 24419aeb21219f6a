"""Demo data for `forewarn init --demo`, created through the same services staff use."""

from __future__ import annotations

from sidecar.db import Database
from sidecar.models import Subject
from sidecar.settings import Settings

DEMO_SUBJECTS = (
    ("customer", "CRM-1001"),
    ("customer", "CRM-1002"),
    ("customer", "CRM-1003"),
    ("property", "100023336956"),
)


def seed(settings: Settings) -> str:
    """Add the demo subjects if absent; return what to open next."""
    database = Database(settings.database_url)
    try:
        with database.transaction() as session:
            for kind, ref in DEMO_SUBJECTS:
                exists = session.query(Subject).filter_by(kind=kind, ref=ref).one_or_none()
                if exists is None:
                    session.add(Subject(kind=kind, ref=ref))
    finally:
        database.dispose()
    base = settings.deployment.public_url
    return (
        f"demo data ready\n"
        f"  readiness:     {base}/readyz\n"
        f"  sample launch: forewarn token --user demo.agent --name 'Demo Agent' --roles agent"
    )
