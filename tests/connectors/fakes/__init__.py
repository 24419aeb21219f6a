"""Fake CRMs speaking the vendors' wire protocols over real HTTP on 127.0.0.1, for tests.

Each fake is started with `with FakeX.start() as fake:` and exposes `.url`, `.requests`
(every request received), `.inject(...)` (faults), `.seed(kind, *keys)` (records that
exist), `.status_of(kind, key)` (what the CRM holds, in status-document terms), `.created`
(records a connector created: must stay empty), `.settings(**overrides)` and `.environ`
(valid connector configuration), `.received_bytes()`, and `.hook(...)` (test code run in
the middle of a request, to stage races).
"""

from .dataverse import FakeDataverse
from .entra import FakeEntraID
from .fhir import FakeFhirServer
from .salesforce import FakeSalesforce
from .server import FakeServer, Fault, Hook, Recorded, Reply, TokenBook
from .webhook import ROTATED_SECRET, SECRET, FakeWebhookReceiver

__all__ = [
    "ROTATED_SECRET",
    "SECRET",
    "FakeDataverse",
    "FakeEntraID",
    "FakeFhirServer",
    "FakeSalesforce",
    "FakeServer",
    "FakeWebhookReceiver",
    "Fault",
    "Hook",
    "Recorded",
    "Reply",
    "TokenBook",
]
