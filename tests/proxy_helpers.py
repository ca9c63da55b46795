"""Helpers for the MLflow proxy tests: raw requests through Jupyter and a recording upstream."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time

from tornado import web
from tornado.httpserver import HTTPServer


def proxy_url(base_url: str, path: str, query: str = "") -> str:
    url = f"{base_url.rstrip('/')}/infinstor/api/mlflow/{path}"
    return f"{url}?{query}" if query else url


async def pfetch(client, base_url, auth, path, *, method="GET", body=None, headers=None, query="", **kw):
    """A request through the proxy; `path` is sent exactly as given (no escaping)."""
    hdrs = dict(auth)
    hdrs.update(headers or {})
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
        hdrs.setdefault("Content-Type", "application/json")
    return await client.fetch(
        proxy_url(base_url, path, query),
        method=method,
        body=body,
        headers=hdrs,
        raise_error=False,
        follow_redirects=False,
        allow_nonstandard_methods=True,
        **kw,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RecordingUpstream:
    """A stand-in tracking server on loopback (own thread and loop) that records what reaches it.

    `/health` answers OK (not recorded in `requests`); `/api/2.0/mlflow/<behaviour>` does:
    echo (returns what it received), slow (answers after `slow_seconds`), stall (sends half the
    body then stops), redirect-inside / redirect-outside / redirect-to-* (to `?to=`), tab-header,
    needs-fresh (401 unless the bearer token is `fresh`), leak (tries to hand the browser cookies
    and the credentials it got), not-modified (304, no body), big-file (1 MiB; HEAD answers its
    length and no body).
    """

    def __init__(self, slow_seconds: float = 5.0):
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.requests: list[dict] = []
        self.health_checks = 0
        self.slow_seconds = slow_seconds
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self._thread.start()
        assert self._ready.wait(10)

    def paths(self) -> list[str]:
        return [r["path"] for r in self.requests]

    async def _main(self):
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        upstream = self

        class Handler(web.RequestHandler):
            SUPPORTED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

            def check_etag_header(self):
                return False

            async def _any(self, *_args):
                path = self.request.path
                if path == "/health":
                    upstream.health_checks += 1
                    self.write("OK")
                    return
                record = {
                    "method": self.request.method,
                    "path": path,
                    "uri": self.request.uri,
                    "headers": dict(self.request.headers.get_all()),
                    "header_list": list(self.request.headers.get_all()),
                    "body": self.request.body,
                }
                upstream.requests.append(record)
                behaviour = path.rsplit("/", 1)[-1]
                if behaviour == "slow":
                    await asyncio.sleep(upstream.slow_seconds)
                    self.write({"slow": True})
                elif behaviour == "stall":
                    self.set_header("Content-Length", "100")
                    self.write(b"x" * 50)
                    await self.flush()
                    await asyncio.sleep(upstream.slow_seconds)
                    self.write(b"x" * 50)
                elif behaviour == "stall-big":
                    self.set_header("Content-Length", str(4 * 1024 * 1024))
                    self.write(b"x" * (1024 * 1024))
                    await self.flush()
                    await asyncio.sleep(upstream.slow_seconds)
                    self.write(b"x" * (3 * 1024 * 1024))
                elif behaviour == "not-modified":  # a revalidated static file: no body, no length
                    self.set_status(304)
                    self.set_header("ETag", '"v1"')
                elif behaviour == "big-file":  # HEAD of it: a length, no body
                    self.set_header("Content-Length", str(1024 * 1024))
                    if self.request.method != "HEAD":
                        self.write(b"x" * (1024 * 1024))
                elif behaviour == "redirect-inside":
                    self.redirect(f"{upstream.uri}/static-files/x.js?v=1")
                elif behaviour == "redirect-outside":
                    self.redirect("https://evil.example.com/steal")
                elif behaviour.startswith("redirect-to-"):  # ?to=<location>, sent as is
                    self.set_status(302)
                    self._headers["Location"] = self.get_query_argument("to", strip=False)
                elif behaviour == "tab-header":  # a legal field value tornado itself refuses to set
                    self._headers["X-Tab"] = "a\tb"
                    self.write({"ok": True})
                elif behaviour == "needs-fresh":
                    if self.request.headers.get("Authorization") != "Bearer fresh-credential-0001":
                        self.set_status(401)
                        self.set_header("WWW-Authenticate", 'Bearer realm="test"')
                        self.write({"error_code": "UNAUTHENTICATED"})
                        return
                    self.write({"ok": True, "size": len(self.request.body)})
                elif behaviour == "leak":
                    auth = self.request.headers.get("Authorization", "")
                    self.set_header("Set-Cookie", "upstream_session=abc; Path=/")
                    self.add_header("Set-Cookie", "other=1; Path=/")
                    self.set_header("WWW-Authenticate", 'Basic realm="mlflow"')
                    self.set_header("Strict-Transport-Security", "max-age=31536000")
                    self.set_header("Clear-Site-Data", '"cookies"')
                    self.set_header("X-Echo-Authorization", auth)
                    self.set_header("Access-Control-Allow-Origin", "*")
                    self.write({"ok": True})
                else:  # echo
                    self.write(
                        {
                            "method": self.request.method,
                            "uri": self.request.uri,
                            "headers": dict(self.request.headers.get_all()),
                            "body_size": len(self.request.body),
                        }
                    )

            get = head = post = put = patch = delete = options = _any

        server = HTTPServer(web.Application([(r"/.*", Handler)]), max_body_size=1 << 30)
        server.listen(self.port, "127.0.0.1")
        self._ready.set()
        await self._stop.wait()
        server.stop()
        # Like a server process that exits: its open (keep-alive) connections close too.
        await server.close_all_connections()

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        if self._loop and self._stop:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        # wait until the port is really closed
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) != 0:
                    return
            time.sleep(0.05)
