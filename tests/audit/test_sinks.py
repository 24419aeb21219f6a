"""External checkpoint sinks: an HTTPS collector receives every signed checkpoint."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sidecar.audit import writer as audit
from sidecar.audit.checkpoints import Checkpoint
from sidecar.settings import SettingsError
from tests.audit.conftest import metric


class Collector(ThreadingHTTPServer):
    """A log collector that stores what it is sent and answers 202, as such services do."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.server.received.append(json.loads(self.rfile.read(length)))
        self.send_response(202)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_checkpoints_are_posted_signed_to_the_collector(make_app, collector, raw) -> None:
    url = f"http://127.0.0.1:{collector.server_address[1]}/checkpoints"
    app = make_app(checkpoint_every_entries=2, checkpoint_url=url)
    with app.app_context():
        for n in range(5):
            audit.record(audit.AuditEvent(action="test.event", actor_id=f"u.{n}"))
    public = app.extensions["forewarn"].audit_keys.signing_key().public_key()
    posted = [Checkpoint.from_json(body) for body in collector.received]
    assert [c.seq for c in posted] == [1, 3, 5]
    assert all(c.signature_valid(public) for c in posted)
    with raw.connect() as connection:
        rows = connection.exec_driver_sql("SELECT seq, entry_hash FROM audit_entries")
        stored = {seq: digest for seq, digest in rows}
    assert all(stored[c.seq] == c.entry_hash for c in posted)


def test_an_unreachable_collector_is_counted_but_does_not_refuse(make_app, collector) -> None:
    port = collector.server_address[1]
    collector.shutdown()
    collector.server_close()
    app = make_app(checkpoint_every_entries=1, checkpoint_url=f"http://127.0.0.1:{port}/x")
    with app.app_context():
        for n in range(3):
            audit.record(audit.AuditEvent(action="test.event", actor_id=f"u.{n}"))
    assert metric(app, "forewarn_audit_checkpoint_sink_failures_total") == 3
    assert metric(app, "forewarn_audit_write_failures_total") == 0


def test_plain_http_to_another_machine_is_refused(make_settings) -> None:
    with pytest.raises(SettingsError, match="audit.checkpoint_url"):
        make_settings(audit={"checkpoint_url": "http://collector.example/checkpoints"})
