"""Real servers for the browser tests: the sidecar, and a fake CRM host on another site."""

from __future__ import annotations

import html
import json
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import axe_playwright_python
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from sidecar.identity.launch import mint_launch_token

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--test-third-party-cookie-phaseout",
    # The fake CRM and a foreign site get names of their own, so each is another site.
    "--host-resolver-rules=MAP crm.test 127.0.0.1, MAP evil.test 127.0.0.1",
]
AXE_SOURCE = (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text()
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa"]


class Server:
    """A WSGI app on an ephemeral loopback port, served by a thread."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app
        self._httpd: BaseWSGIServer = make_server(
            "127.0.0.1", 0, lambda env, start: self.app(env, start), threaded=True
        )
        self.port = self._httpd.server_port
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


@contextmanager
def served(app: Any) -> Iterator[str]:
    """The sidecar app on a loopback port, by its base URL; its database let go afterwards."""
    server = Server(app)
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.close()
        app.extensions["forewarn"].database.dispose()


@dataclass
class Seen:
    method: str
    path: str
    cookie: str | None
    origin: str | None


PROBE_PAGE = """<!doctype html><html lang="en"><head><title>probe</title></head><body>
<script>
fetch('/__cookie-probe/echo', {credentials: 'include'}).then(r => r.text())
  .then(t => { document.body.dataset.sent = t; });
</script></body></html>"""


@dataclass
class Recorder:
    """Wraps the sidecar: remembers each request's cookies and origin, and serves a cookie
    probe that shows whether this browser sends cookies to a site framed by another site."""

    app: Callable[..., Any]
    seen: list[Seen] = field(default_factory=list)

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        if request.path == "/__cookie-probe":
            response = Response(PROBE_PAGE, mimetype="text/html")
            response.set_cookie("probe", "1", samesite="None", secure=True)
            return response(environ, start_response)
        if request.path == "/__cookie-probe/echo":
            return Response(request.headers.get("Cookie", "none"))(environ, start_response)
        self.seen.append(
            Seen(
                request.method,
                request.path,
                request.headers.get("Cookie"),
                request.headers.get("Origin"),
            )
        )
        return self.app(environ, start_response)

    def paths(self, method: str = "GET") -> list[str]:
        return [s.path for s in self.seen if s.method == method]


HOST_JS = """
const widget = document.querySelector("forewarn-flag");
const params = new URLSearchParams(location.search);
window.tokensGiven = 0;
window.giveToken = async () => {
  const response = await fetch("/token?" + params.toString());
  window.tokensGiven += 1;
  widget.launchToken = await response.text();
};
widget.addEventListener("forewarn-token-needed", () => {
  if (!params.has("hold")) window.giveToken();
});
if (!params.has("hold")) window.giveToken();
"""

FRAME_HOST_JS = """
const frame = document.getElementById("embed");
const sidecar = new URL(frame.src).origin;
const params = new URLSearchParams(location.search);
window.sendToken = async () => {
  const token = await (await fetch("/token?" + params.toString())).text();
  frame.contentWindow.postMessage({type: "forewarn:launch-token", token}, sidecar);
};
const listen = () => window.addEventListener("message", (event) => {
  if (event.origin !== sidecar || event.source !== frame.contentWindow) return;
  if (event.data && event.data.type === "forewarn:token-needed" && !params.has("hold")) {
    window.sendToken();
  }
});
// "late": a host whose script starts listening only after the embed page has asked.
if (params.has("late")) setTimeout(listen, 1200); else listen();
"""

EVIL_FRAME_JS = """
(async () => {
  const token = await (await fetch("/token?user=u.mallory&roles=visiting_officer")).text();
  window.parent.frames[0].postMessage({type: "forewarn:launch-token", token}, "*");
  document.body.dataset.sent = "yes";
})();
"""


def _page(title: str, body: str, scripts: Iterable[str] = ()) -> Response:
    tags = "".join(f'<script src="{html.escape(src)}"></script>' for src in scripts)
    return Response(
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title></head><body>{body}{tags}</body></html>",
        mimetype="text/html",
    )


@dataclass
class FakeCrm:
    """A CRM host on its own site: record pages that embed the widget, and the host's side of
    sign-in (it mints launch tokens with the instance's demo key, as a CRM host would)."""

    sidecar: str
    launch_key: bytes
    audience: str

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        return self.respond(request)(environ, start_response)

    def respond(self, request: Request) -> Response:
        args = request.args
        kind, ref = args.get("kind", "customer"), args.get("ref", "CRM-1")
        if request.path == "/token":
            roles = args.get("roles", "visiting_officer").split(",")
            user = args.get("user", f"u.{roles[0]}")
            if args.get("bad"):
                return Response("not-a-launch-token", mimetype="text/plain")
            token = mint_launch_token(self.launch_key, self.audience, user, user.title(), roles)
            return Response(token, mimetype="text/plain")
        if request.path == "/host.js":
            return Response(HOST_JS, mimetype="text/javascript")
        if request.path == "/frame-host.js":
            return Response(FRAME_HOST_JS, mimetype="text/javascript")
        if request.path == "/post-host.js":
            return Response("document.forms[0].submit();", mimetype="text/javascript")
        if request.path == "/evil-frame.js":
            return Response(EVIL_FRAME_JS, mimetype="text/javascript")
        api = args.get("api", self.sidecar)
        embed = f"{self.sidecar}/embed?{urlencode({'kind': kind, 'ref': ref})}"
        if request.path == "/record":
            element = (
                f'<forewarn-flag subject-kind="{html.escape(kind)}" '
                f'subject-ref="{html.escape(ref)}" api="{html.escape(api)}"></forewarn-flag>'
            )
            return _page(
                f"CRM record {ref}",
                f"<main><h1>Customer record {html.escape(ref)}</h1>{element}</main>",
                [f"{self.sidecar}/widget/forewarn.js", "/host.js"],
            )
        if request.path == "/frame-host":
            frame = f'<iframe id="embed" title="Forewarn flag status" src="{html.escape(embed)}"'
            frame += ' style="width:100%;height:24rem;border:0"></iframe>'
            evil = ""
            if args.get("evil"):
                evil_origin = request.host_url.replace("crm.test", "evil.test").rstrip("/")
                evil = f'<iframe title="Advert" src="{evil_origin}/evil-frame"></iframe>'
            return _page(
                f"CRM record {ref} (iframe)",
                f"<main><h1>Customer record {html.escape(ref)}</h1>{frame}{evil}</main>",
                ["/frame-host.js"],
            )
        if request.path == "/post-host":
            token = html.escape(self._token(args))
            form = (
                f'<form method="post" action="{html.escape(embed)}" target="embed">'
                f'<input type="hidden" name="launch_token" value="{token}"></form>'
            )
            return _page(
                "CRM record (posted token)",
                f'<main><h1>Posted</h1><iframe name="embed" title="Forewarn flag status">'
                f"</iframe>{form}</main>",
                ["/post-host.js"],
            )
        if request.path == "/evil-frame":
            return _page("advert", "<p>advert</p>", ["/evil-frame.js"])
        if request.path == "/framing":
            return _page(
                "framing",
                f'<iframe id="embed" title="framed" src="{html.escape(embed)}"></iframe>',
            )
        return Response("not found", status=404)

    def _token(self, args: Any) -> str:
        roles = args.get("roles", "visiting_officer").split(",")
        return mint_launch_token(
            self.launch_key, self.audience, f"u.{roles[0]}", "Posted User", roles
        )


def axe_violations(target: Any) -> list[dict[str, Any]]:
    """Run axe-core on a page or frame for WCAG 2.0-2.2 A and AA; return the violations."""
    target.evaluate(AXE_SOURCE)
    result = target.evaluate(
        "(tags) => axe.run(document, {runOnly: {type: 'tag', values: tags}})", WCAG_TAGS
    )
    return [
        {"id": v["id"], "impact": v["impact"], "targets": [n["target"] for n in v["nodes"]]}
        for v in result["violations"]
    ]


def describe(violations: list[dict[str, Any]]) -> str:
    return json.dumps(violations, indent=1)
