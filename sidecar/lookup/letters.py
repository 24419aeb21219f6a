"""Opening a letter's text: for those who send letters, or who may read the flag's details.

The API's letter route and the console's letter pages open letters here and audit each
opening the same way, so one rule and one kind of audit entry cover every copy.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from flask_login import current_user

from sidecar.audit import writer as audit
from sidecar.errors import Problem
from sidecar.lookup.service import may_read_details
from sidecar.policy import access
from sidecar.register import flags, notices
from sidecar.register.context import ServiceContext

LETTER_READ = "letter.read"


@dataclass(frozen=True)
class OpenedLetter:
    """A letter as opened for the signed-in reader; `body` is None when refused or purged."""

    flag_id: str
    subject_kind: str
    subject_ref: str
    reference: str | None
    n: int
    allowed: bool
    body: str | None = None
    kind: str = ""
    created_at: datetime | None = None
    signed_by_name: str = ""


def open_letter(ctx: ServiceContext, flag_id: str, n: int) -> OpenedLetter:
    """Letter `n` of the flag, if the reader may open letters (the caller audits it)."""
    flag = flags.load(ctx.session, flag_id)
    allowed = access.decide(current_user, "notice.issue").allowed or (
        may_read_details(ctx.session, flag, ctx.now()).allowed
    )
    opened = OpenedLetter(
        flag_id, flag.subject.kind, flag.subject.ref, flag.reference, n, allowed=allowed
    )
    if not allowed:
        return opened
    item = notices.letter(ctx.session, flag, n)
    return replace(
        opened,
        body=item.unseal(ctx.keyring, "body"),
        kind=item.kind,
        created_at=item.created_at,
        signed_by_name=item.signed_by_name,
    )


def disclose(opened: OpenedLetter, how: str = "") -> str:
    """The letter's text once its opening is audited; 403 (audited) or 410 (purged) if not."""
    subject = {
        "flag_id": opened.flag_id,
        "subject_kind": opened.subject_kind,
        "subject_ref": opened.subject_ref,
    }
    if not opened.allowed:
        audit.record_denied(
            LETTER_READ, "neither a letter sender nor involved in the case", **subject
        )
        raise Problem(403, "forbidden", "letters are open to letter senders and those involved")
    if opened.body is None:
        raise Problem(410, "purged", f"letter {opened.n} was purged after the retention period")
    audit.record(
        audit.AuditEvent(action=LETTER_READ, outcome_reason=f"letter {opened.n}{how}", **subject)
    )
    return opened.body
