"""The app under gunicorn (threaded workers) on a loopback port, and staff bearer tokens for it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import jwt

from bench.seed import LAUNCH_KID, launch_key_path
from sidecar.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Server:
    """A running gunicorn: its address, master pid and the environment it was given."""

    url: str
    process: subprocess.Popen[bytes]
    environ: dict[str, str]
    log: Path
    _sock: socket.socket | None = field(default=None, repr=False)

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in children.read_text().split()]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self._sock is not None:
            self._sock.close()


def environ_for(instance_dir: Path, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOREWARN_")}
    env.update(
        FOREWARN_INSTANCE=str(instance_dir),
        FOREWARN_DATABASE_URL=database_url,
        FOREWARN_CONFIG=str(ROOT / "config" / "forewarn.toml"),
    )
    return env


def start(
    instance_dir: Path, database_url: str, log: Path, workers: int = 2, threads: int = 8
) -> Server:
    """gunicorn -k gthread -w W --threads T bench.app:create_bench_app() on a free port.

    The listening socket is made here (port 0) and handed over by descriptor, so the port is
    known without guessing and nothing else can take it in between.
    """
    sock = socket.create_server(("127.0.0.1", 0), backlog=1024)
    sock.set_inheritable(True)
    port = sock.getsockname()[1]
    env = environ_for(instance_dir, database_url)
    command = [
        str(Path(sys.executable).parent / "gunicorn"),
        "-k",
        "gthread",
        "-w",
        str(workers),
        "--threads",
        str(threads),
        "--bind",
        f"fd://{sock.fileno()}",
        "--no-control-socket",
        "--graceful-timeout",
        "5",
        "bench.app:create_bench_app()",
    ]
    handle = log.open("ab")
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
        pass_fds=[sock.fileno()],
    )
    server = Server(f"http://127.0.0.1:{port}", process, env, log, sock)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}; see {log}")
        try:
            with urllib.request.urlopen(server.url + "/readyz", timeout=5) as response:  # noqa: S310
                if response.status == 200 and len(server.worker_pids()) >= workers:
                    return server
        except OSError:
            pass
        time.sleep(0.3)
    server.stop()
    raise RuntimeError(f"gunicorn did not become ready; see {log}")


def bearer_token(server: Server, user_id: str, roles: list[str]) -> str:
    """Sign in through POST /auth/launch with a launch token from the demo launch key."""
    settings = load_settings(
        ROOT / "config" / "forewarn.toml",
        instance_dir=server.environ["FOREWARN_INSTANCE"],
        database_url=server.environ["FOREWARN_DATABASE_URL"],
        environ={},
    )
    now = int(time.time())
    claims = {
        "sub": user_id,
        "name": user_id.title(),
        "roles": roles,
        "aud": settings.deployment.public_url,
        "iat": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
    }
    key = launch_key_path(settings.instance_dir).read_bytes()
    launch = jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": LAUNCH_KID})
    request = urllib.request.Request(  # noqa: S310
        server.url + "/auth/launch",
        data=json.dumps({"token": launch}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return json.loads(response.read())["access_token"]


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User and system CPU seconds each process has used so far (all its threads)."""
    ticks = os.sysconf("SC_CLK_TCK")
    found = {}
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        # The fields after the command name (which may hold spaces) from field 3 on.
        fields = stat.rpartition(")")[2].split()
        found[pid] = (int(fields[11]) + int(fields[12])) / ticks
    return found


def rss_kib(pid: int) -> dict[str, int]:
    """Current and peak resident set size of a process, in KiB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0])
    return found
