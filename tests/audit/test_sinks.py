"""External checkpoint sinks: an HTTPS collector receives every signed checkpoint, and
`forewarn audit verify` reads them back from it."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from sidecar.audit import writer as audit
from sidecar.audit.checkpoints import Checkpoint
from sidecar.settings import SettingsError
from tests.audit.conftest import config_with, forewarn, metric, rehash_from, sql


class Collector(ThreadingHTTPServer):
    """A log collector that stores what it is sent and answers 202, as such services do;
    a GET of the same URL answers what it holds, one JSON checkpoint per line."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.read_status = 200
        super().__init__(("127.0.0.1", 0), _Handler)

    def url(self, path: str = "/checkpoints") -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


class _Handler(BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.server.received.append(json.loads(self.rfile.read(length)))
        self.send_response(202)
        self.end_headers()

    def do_GET(self) -> None:
        body = "".join(json.dumps(item) + "\n" for item in self.server.received).encode()
        self.send_response(self.server.read_status)
        self.send_header("Content-Type", "application/x-ndjson")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

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


ENTRIES = 14  # checkpoints at 1, 5, 9 and 13, sent only to the collector


@pytest.fixture
def collected(make_app, collector, tmp_path):
    """A trail whose checkpoints go to the database and the collector (no checkpoint file)."""
    every = {"checkpoint_every_entries": 4, "checkpoint_every_seconds": 3600}
    app = make_app(**every, checkpoint_file="", checkpoint_url=collector.url())
    with app.app_context():
        for n in range(ENTRIES):
            audit.record(audit.AuditEvent(action="test.event", actor_id=f"u.{n}", via="api"))
    assert [body["seq"] for body in collector.received] == [1, 5, 9, 13]
    return every


def _verify(tmp_path, instance_dir, database_url, **audit_settings):
    config = config_with(tmp_path, **audit_settings)
    return forewarn(
        "audit", "verify", instance=instance_dir, database_url=database_url, config=config
    )


def test_verify_reads_the_checkpoints_back_from_the_collector(
    collected, collector, tmp_path, instance_dir, database_url
) -> None:
    result = _verify(
        tmp_path, instance_dir, database_url, checkpoint_file="", checkpoint_url=collector.url()
    )
    assert result.returncode == 0, result.stderr
    # Four checkpoints stored in the database and the same four read back from the collector.
    assert (
        result.stdout.strip()
        == f"audit trail intact: {ENTRIES} entries, 8 signed checkpoints verified"
    )


def test_a_rewrite_the_collector_disagrees_with_fails_verify_naming_its_checkpoint(
    collected, collector, raw, tmp_path, instance_dir, database_url
) -> None:
    """The intruder rewrites entry 6 onwards and deletes the stored checkpoints it breaks."""
    sql(raw, "UPDATE audit_entries SET actor_id = 'u.someone' WHERE seq = 6")
    rehash_from(raw, 6)
    sql(raw, "DELETE FROM audit_checkpoints WHERE seq > 1")

    unseen = _verify(tmp_path, instance_dir, database_url, checkpoint_file="", checkpoint_url="")
    assert unseen.returncode == 0, "without the collector the rewrite passes: nothing to catch"

    result = _verify(
        tmp_path, instance_dir, database_url, checkpoint_file="", checkpoint_url=collector.url()
    )
    assert result.returncode == 1
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("Error: audit trail NOT intact: first bad entry 9: ")
    assert "entry 9 differs from the collector's checkpoint signed" in message


@pytest.mark.parametrize("how", ["stopped", "answers 503"])
def test_a_collector_that_cannot_be_read_back_fails_verify(
    collected, collector, tmp_path, instance_dir, database_url, how
) -> None:
    url = collector.url("/checkpoints?key=s3cret-token")
    if how == "stopped":
        collector.shutdown()
        collector.server_close()
        reason = "it could not be reached"
    else:
        collector.read_status = 503
        reason = "it answered 503"

    result = _verify(tmp_path, instance_dir, database_url, checkpoint_file="", checkpoint_url=url)
    assert result.returncode == 1
    assert result.stdout == ""
    assert (
        f"audit trail NOT intact: could not read back the checkpoints from "
        f"{collector.url()}: {reason}"
    ) in result.stderr
    assert "s3cret" not in result.stderr
