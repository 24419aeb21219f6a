"""Opening a letter's text: only under the details rule (a live grant for the subject, or a
part in the case), audited before anything is decrypted.

The API's letter route and the console's letter pages open letters here and audit each
opening the same way, so one rule and one kind of audit entry cover every copy. Sending
letters (`notice.issue`) opens none: a letter carries the reason and the person's address.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row

from sidecar.audit import writer as audit
from sidecar.errors import Problem
from sidecar.lookup.service import access_purpose, details_access
from sidecar.policy.access import Decision
from sidecar.register import flags, notices
from sidecar.register.case_models import Letter
from sidecar.register.context import ServiceContext
from sidecar.storage.crypto import KeyRing

LETTER_READ = "letter.read"


@dataclass(frozen=True)
class OpenedLetter:
    """A letter as decided for the signed-in reader, still sealed; `letter` is None when
    refused."""

    flag_id: str
    subject_kind: str
    subject_ref: str
    reference: str | None
    n: int
    decision: Decision
    grants: Sequence[Row[Any]]
    keyring: KeyRing
    letter: Letter | None = None

    @property
    def allowed(self) -> bool:
        return self.decision.allowed

    @property
    def kind(self) -> str:
        return self.letter.kind if self.letter is not None else ""

    @property
    def created_at(self) -> datetime | None:
        return self.letter.created_at if self.letter is not None else None

    @property
    def signed_by_name(self) -> str:
        return self.letter.signed_by_name if self.letter is not None else ""


def open_letter(ctx: ServiceContext, flag_id: str, n: int) -> OpenedLetter:
    """Letter `n` of the flag, decided by the details rule; nothing is decrypted here."""
    flag = flags.load(ctx.session, flag_id)
    decision, grants = details_access(ctx.session, flag, ctx.now())
    return OpenedLetter(
        flag_id,
        flag.subject.kind,
        flag.subject.ref,
        flag.reference,
        n,
        decision,
        grants,
        ctx.keyring,
        letter=notices.letter(ctx.session, flag, n) if decision.allowed else None,
    )


def disclose(opened: OpenedLetter, how: str = "") -> str:
    """The letter's text once its opening is committed to the trail; 403 (audited) when the
    rule refuses, 410 when the text was purged."""
    subject = {
        "flag_id": opened.flag_id,
        "subject_kind": opened.subject_kind,
        "subject_ref": opened.subject_ref,
    }
    if opened.letter is None:
        audit.record_denied(LETTER_READ, opened.decision.basis, **subject)
        raise Problem(403, "forbidden", f"not permitted: {opened.decision.basis}")
    if opened.letter.body is None:
        raise Problem(410, "purged", f"letter {opened.n} was purged after the retention period")
    audit.record(
        audit.AuditEvent(
            action=LETTER_READ,
            outcome_reason=f"letter {opened.n}{how} ({opened.decision.basis})",
            **subject,
            **access_purpose(opened.decision, opened.grants),
        )
    )
    body = opened.letter.unseal(opened.keyring, "body")
    assert body is not None
    return body
