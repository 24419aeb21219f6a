"""A real HTTP server on 127.0.0.1 for fake CRMs: records every request and injects faults."""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, unquote, urlsplit


@dataclass
class Recorded:
    """One request as the fake received it."""

    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    started: float
    status: int = 0

    @property
    def path(self) -> str:
        return unquote(urlsplit(self.target).path)

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.target).query)

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), None)

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def raw(self) -> bytes:
        """Every byte that arrived: request line, headers and body."""
        head = f"{self.method} {self.target}\r\n" + "".join(
            f"{k}: {v}\r\n" for k, v in self.headers.items()
        )
        return head.encode() + b"\r\n" + self.body


@dataclass
class Fault:
    """An injected misbehaviour, used `times` times by requests that match it."""

    status: int | None = None  # None: only the delay, then answer normally
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    times: int = 1
    method: str | None = None
    path: str | None = None  # substring of the decoded path
    carrying: bytes | None = None  # substring of the body
    # Requests this fault delayed and then handled: with a delay longer than the client's
    # read timeout, the fake applies a request the client has already given up on.
    applied: int = 0

    def matches(self, request: Recorded) -> bool:
        return (
            self.times > 0
            and (self.method is None or self.method == request.method)
            and (self.path is None or self.path in request.path)
            and (self.carrying is None or self.carrying in request.body)
        )


@dataclass
class Hook:
    """Test code run while the fake serves a matching request, for the next `times` of them.

    `before` runs when the request has arrived and the fake has not yet acted on it; `after`
    once the fake has acted but not yet answered. Either may make other requests to the
    fake (it serves each on its own thread), which is how a test lands one client's
    request inside another's exchange. If the code raises, the fake answers 500 and keeps
    the exception in `errors`.
    """

    matches: Callable[[Recorded], bool]
    before: Callable[[Recorded], None] | None = None
    after: Callable[[Recorded], None] | None = None
    times: int = 1
    calls: int = 0
    errors: list[BaseException] = field(default_factory=list)


@dataclass
class Reply:
    """What the fake answers."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> tuple[bytes, str]:
        if self.body is None:
            return b"", ""
        if isinstance(self.body, bytes):
            return self.body, self.headers.get("Content-Type", "application/octet-stream")
        if isinstance(self.body, str):
            return self.body.encode(), "text/plain; charset=utf-8"
        return json.dumps(self.body).encode(), "application/json; charset=utf-8"


class TokenBook:
    """Access tokens an identity provider issued, and which are still valid."""

    def __init__(self) -> None:
        self._expiry: dict[str, float] = {}
        self._lock = threading.Lock()
        self.issued = 0

    def issue(self, lifetime: float) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._expiry[token] = time.monotonic() + lifetime
            self.issued += 1
        return token

    def valid(self, authorization: str | None) -> bool:
        if not authorization or not authorization.startswith("Bearer "):
            return False
        with self._lock:
            return self._expiry.get(authorization[7:], 0) > time.monotonic()

    def expire_all(self) -> None:
        """Make every issued token stale, as when a session times out."""
        with self._lock:
            self._expiry.clear()


class FakeServer:
    """Base for fake CRMs: a ThreadingHTTPServer on an ephemeral port, in a daemon thread.

    Subclasses implement `handle(request) -> Reply`. Every request is kept in `requests`;
    `max_active` is the highest number of requests being handled at once.
    """

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.url = ""
        self.active = 0
        self.max_active = 0
        self._faults: list[Fault] = []
        self._hooks: list[Hook] = []
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None

    @classmethod
    @contextmanager
    def start(cls, **kwargs: Any) -> Iterator[Self]:
        """Run a fake for the duration of a `with` block."""
        fake = cls(**kwargs)
        fake.serve()
        try:
            yield fake
        finally:
            fake.stop()

    def serve(self) -> None:
        handler = type("Handler", (_Handler,), {"fake": self})
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        httpd.daemon_threads = True
        httpd.block_on_close = False
        self._httpd = httpd
        self.url = f"http://127.0.0.1:{httpd.server_address[1]}"
        # A short poll interval keeps shutdown (and so every test teardown) quick.
        threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()

    def stop(self) -> None:
        """Stop listening and drop open keep-alive connections, as a crashed server would."""
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        with self._lock:
            connections, self._connections = self._connections, set()
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def inject(
        self,
        status: int | None = None,
        *,
        body: Any = None,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
        times: int = 1,
        method: str | None = None,
        path: str | None = None,
        carrying: bytes | None = None,
    ) -> Fault:
        """Answer the next `times` matching requests with `status` (after `delay` seconds).

        With no status, the request is handled as usual after the delay: a delay past the
        client's read timeout makes the fake apply it after the client gave up on it.
        """
        fault = Fault(status, body, dict(headers or {}), delay, times, method, path, carrying)
        with self._lock:
            self._faults.append(fault)
        return fault

    def hook(
        self,
        matches: Callable[[Recorded], bool],
        *,
        before: Callable[[Recorded], None] | None = None,
        after: Callable[[Recorded], None] | None = None,
        times: int = 1,
    ) -> Hook:
        """Run `before` and `after` around the fake's handling of the next matching requests."""
        hook = Hook(matches, before, after, times)
        with self._lock:
            self._hooks.append(hook)
        return hook

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """How many requests matched method and path substring."""
        return sum(
            1
            for r in self.requests
            if (method is None or r.method == method) and (path is None or path in r.path)
        )

    def received_bytes(self) -> bytes:
        """Everything every request carried, for checks that nothing confidential was sent."""
        return b"\n".join(r.raw for r in list(self.requests))

    def handle(self, request: Recorded) -> Reply:
        raise NotImplementedError

    def _take_fault(self, request: Recorded) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(request):
                    fault.times -= 1
                    return fault
        return None

    def _take_hook(self, request: Recorded) -> Hook | None:
        with self._lock:
            for hook in self._hooks:
                if hook.times > 0 and hook.matches(request):
                    hook.times -= 1
                    hook.calls += 1
                    return hook
        return None

    def _respond(self, request: Recorded) -> Reply:
        with self._lock:
            self.requests.append(request)
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            fault = self._take_fault(request)
            if fault and fault.delay:
                time.sleep(fault.delay)
            if fault and fault.status is not None:
                return Reply(fault.status, fault.body, fault.headers)
            hook = self._take_hook(request)
            if hook is None:
                reply = self.handle(request)
                if fault:
                    with self._lock:
                        fault.applied += 1
                return reply
            try:
                if hook.before:
                    hook.before(request)
                reply = self.handle(request)
                if hook.after:
                    hook.after(request)
            except Exception as exc:  # the test's code failed: report it, never hang
                hook.errors.append(exc)
                return Reply(500, f"test hook failed: {exc!r}")
            return reply
        finally:
            with self._lock:
                self.active -= 1


class _Handler(BaseHTTPRequestHandler):
    fake: FakeServer
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without this, Nagle's algorithm and
        # delayed ACKs stall every keep-alive response by about 40 ms.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.fake._lock:
            self.fake._connections.add(self.connection)

    def finish(self) -> None:
        with self.fake._lock:
            self.fake._connections.discard(self.connection)
        super().finish()

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Recorded(
            self.command, self.path, dict(self.headers.items()), body, time.monotonic()
        )
        reply = self.fake._respond(request)
        request.status = reply.status
        payload, content_type = reply.encoded()
        try:
            self.send_response(reply.status)
            headers = {"Content-Type": content_type} if content_type else {}
            headers.update(reply.headers)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up (a read timeout test); nothing to answer.
            self.close_connection = True

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        return
