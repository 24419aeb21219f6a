"""The receiver-side helper CRM teams use to check Forewarn's webhook signatures."""

from __future__ import annotations

import time

import pytest

from connectors.webhook_verify import (
    WebhookVerificationError,
    check_status,
    newer_statuses,
    sign,
    verify,
)
from tests.connectors.conftest import make_status
from tests.connectors.fakes import ROTATED_SECRET, SECRET

BODY = b'{"type":"flag_status.updated","data":{}}'
# Signed at collection time and checked later: a fixed clock keeps a long run from aging them.
NOW = 1_800_000_000


def headers(body: bytes = BODY, secret: str = SECRET, stamp: int | None = None) -> dict[str, str]:
    stamp = int(time.time()) if stamp is None else stamp
    return {
        "Webhook-Id": "msg_1",
        "Webhook-Timestamp": str(stamp),
        "Webhook-Signature": sign("msg_1", stamp, body, secret),
    }


def test_valid_signature_returns_the_event() -> None:
    assert verify(BODY, headers(), SECRET) == {"type": "flag_status.updated", "data": {}}


def test_any_one_of_several_signatures_may_match() -> None:
    h = headers(secret=ROTATED_SECRET)
    h["Webhook-Signature"] = "v1,bm90LWl0 " + h["Webhook-Signature"]
    assert verify(BODY, h, ROTATED_SECRET)["type"] == "flag_status.updated"


@pytest.mark.parametrize(
    ("body", "h", "secret", "message"),
    [
        (BODY + b" ", headers(stamp=NOW), SECRET, "no matching signature"),
        (BODY, headers(stamp=NOW), ROTATED_SECRET, "no matching signature"),
        (BODY, headers(stamp=NOW - 3600), SECRET, "tolerance"),
        (BODY, headers(stamp=NOW + 3600), SECRET, "tolerance"),
        (BODY, {"webhook-id": "msg_1"}, SECRET, "missing header"),
        (BODY, headers(stamp=NOW), "plain-secret", "whsec_"),
    ],
    ids=["tampered", "wrong-secret", "old", "future", "missing-header", "bad-secret"],
)
def test_rejections(body: bytes, h: dict[str, str], secret: str, message: str) -> None:
    with pytest.raises(WebhookVerificationError, match=message):
        verify(body, h, secret, now=NOW)


def test_tolerance_is_measured_from_now() -> None:
    stamp = 1_700_000_000
    assert verify(BODY, headers(stamp=stamp), SECRET, now=stamp + 300)
    with pytest.raises(WebhookVerificationError, match="tolerance"):
        verify(BODY, headers(stamp=stamp), SECRET, now=stamp + 301)


def test_newer_statuses_discards_older_and_repeated_deliveries() -> None:
    held = {("customer", "C-1"): 5, ("customer", "C-2"): 1}
    documents = [
        {"subject_kind": "customer", "record_key": "C-1", "version": 4},
        {"subject_kind": "customer", "record_key": "C-2", "version": 2},
        {"subject_kind": "customer", "record_key": "C-3", "version": 1},
    ]
    snapshot = {"type": "flag_status.snapshot", "data": {"statuses": documents}}
    newer = newer_statuses(snapshot, lambda kind, key: held.get((kind, key)))
    assert [d["record_key"] for d in newer] == ["C-2", "C-3"]
    repeated = {"type": "flag_status.updated", "data": documents[0] | {"version": 5}}
    assert newer_statuses(repeated, lambda kind, key: held.get((kind, key))) == []
    assert newer_statuses({"type": "forewarn.ping", "data": {}}, lambda *_: None) == []


def test_check_status_takes_documents_with_or_without_adjustments() -> None:
    status = make_status("C-1", adjustments=("Contact by letter in large print",))
    check_status(status.as_document())
    document = status.as_document(adjustments=True)
    assert document["adjustments"] == ["Contact by letter in large print"]
    check_status(document)
    for broken, problem in (
        ({**document, "adjustments": "Contact by letter"}, "'adjustments' is not of"),
        ({**document, "adjustments": [1]}, "'adjustments' is not of"),
        ({**document, "version": True}, "'version' is not of"),
        ({k: v for k, v in document.items() if k != "level"}, "lacks 'level'"),
        ({**document, "reason": "Struck an officer"}, "undocumented key 'reason'"),
    ):
        with pytest.raises(WebhookVerificationError, match=problem):
            check_status(broken)
