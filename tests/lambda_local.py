"""Lambda without AWS: the serverless handler called in its own process with real event shapes.

- `LambdaProcess`: one execution environment. A child Python process imports the handler and calls
  it with the events it is sent (one at a time, like Lambda), as Lambda's runtime client does.
  Two of them are two instances of the function sharing a database.
- Event builders in the shapes AWS documents: API Gateway HTTP API (payload 2.0), Lambda function
  URL (the same payload with its own request context) and REST API (1.0, multi-value headers).
- `LocalHttpApi`: an HTTP server on loopback that turns each request into an HTTP API event for a
  `LambdaProcess` and its response back into HTTP, as API Gateway does; the MLflow client talks
  to the handler through it.

Run as a script, this module is the child: JSON lines in on stdin, JSON lines out on fd 3's copy
of stdout (the handler's own logs go to stderr).
"""

from __future__ import annotations

import base64
import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

API_ID = "a1b2c3d4e5"
REGION = "us-east-1"
API_HOST = f"{API_ID}.execute-api.{REGION}.amazonaws.com"
URL_ID = "abcdefghijklmnopqrstuvwxyz012345"
FUNCTION_URL_HOST = f"{URL_ID}.lambda-url.{REGION}.on.aws"
ALLOWED_HOSTS = f"{API_HOST},{FUNCTION_URL_HOST},{API_ID}.execute-api.{REGION}.amazonaws.com:*"


def _now() -> tuple[str, int]:
    epoch = int(time.time() * 1000)
    return time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()), epoch


def http_api_event(
    method: str,
    path: str,
    *,
    query: str = "",
    headers: dict | None = None,
    cookies: list[str] | None = None,
    body: bytes | str | None = None,
    function_url: bool = False,
    base64_body: bool = True,
) -> dict:
    """An HTTP API (payload format 2.0) or function URL event. Repeated headers arrive joined with
    commas, cookies in `cookies`, a binary or any body base64-encoded (`isBase64Encoded`)."""
    host = FUNCTION_URL_HOST if function_url else API_HOST
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    headers.setdefault("host", host)
    headers.setdefault("user-agent", "python-requests/2.32")
    headers.setdefault("x-forwarded-proto", "https")
    headers.setdefault("x-forwarded-port", "443")
    headers.setdefault("x-forwarded-for", "203.0.113.7")
    raw = body.encode() if isinstance(body, str) else (body or b"")
    if raw:
        headers.setdefault("content-length", str(len(raw)))
    when, epoch = _now()
    context = {
        "accountId": "anonymous" if function_url else "123456789012",
        "apiId": URL_ID if function_url else API_ID,
        "domainName": host,
        "domainPrefix": host.split(".", 1)[0],
        "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7", "userAgent": headers["user-agent"]},
        "requestId": str(uuid.uuid4()),
        "routeKey": "$default",
        "stage": "$default",
        "time": when,
        "timeEpoch": epoch,
    }
    event = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": context,
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = list(cookies)
    if query:
        from urllib.parse import parse_qs

        event["queryStringParameters"] = {k: ",".join(v) for k, v in parse_qs(query, keep_blank_values=True).items()}
    if raw:
        if base64_body:
            event["body"], event["isBase64Encoded"] = base64.b64encode(raw).decode(), True
        else:
            event["body"] = raw.decode()
    return event


def rest_api_event(
    method: str,
    path: str,
    *,
    query: dict[str, list[str]] | None = None,
    headers: dict[str, list[str]] | None = None,
    body: bytes | None = None,
) -> dict:
    """A REST API (payload format 1.0) proxy event: `multiValueHeaders` and `multiValueQueryStringParameters`."""
    multi = {k.lower(): list(v) for k, v in (headers or {}).items()}
    multi.setdefault("host", [API_HOST])
    raw = body or b""
    if raw:
        multi.setdefault("content-length", [str(len(raw))])
    _, epoch = _now()
    return {
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": {k: v[-1] for k, v in multi.items()},
        "multiValueHeaders": multi,
        "queryStringParameters": {k: v[-1] for k, v in (query or {}).items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "isBase64Encoded": bool(raw),
        "body": base64.b64encode(raw).decode() if raw else None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": API_ID,
            "httpMethod": method,
            "path": f"/prod{path}",
            "stage": "prod",
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": epoch,
            "resourcePath": "/{proxy+}",
            "identity": {"sourceIp": "203.0.113.7", "userAgent": "python-requests/2.32"},
        },
    }


def response_body(response: dict) -> bytes:
    body = response.get("body") or ""
    return base64.b64decode(body) if response.get("isBase64Encoded") else body.encode()


def response_json(response: dict):
    return json.loads(response_body(response) or b"null")


def response_headers(response: dict) -> dict[str, str]:
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    for k, values in (response.get("multiValueHeaders") or {}).items():
        headers[k.lower()] = ",".join(values)
    return headers


class LambdaProcess:
    """One execution environment of the function: a child process calling the handler."""

    def __init__(self, env: dict[str, str], log_path: Path):
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self._lock = threading.Lock()
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve())],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            start_new_session=True,
        )

    def invoke(self, event: dict, handler: str = "handler", timeout: float = 120) -> dict:
        with self._lock:
            self.proc.stdin.write((json.dumps({"handler": handler, "event": event}) + "\n").encode())
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the function's process exited: {self.log_path.read_text()[-3000:]}")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"the handler raised: {answer['error']}")
        return answer["response"]

    def freeze(self) -> None:
        """What Lambda does to an instance between invocations: nothing in it runs (its threads neither)."""
        os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.thaw()
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        self._log.close()


class LocalHttpApi:
    """API Gateway's HTTP API on loopback in front of one `LambdaProcess`."""

    def __init__(self, function: LambdaProcess):
        self.function = function
        self.requests: list[tuple[str, str, int]] = []  # (method, path, status) as answered
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _any(self):
                path, _, query = self.path.partition("?")
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                headers: dict[str, str] = {}
                cookies: list[str] = []
                for name, value in self.headers.items():
                    name = name.lower()
                    if name == "cookie":
                        cookies += [c.strip() for c in value.split(";") if c.strip()]
                    elif name not in ("host", "connection"):
                        headers[name] = f"{headers[name]},{value}" if name in headers else value
                event = http_api_event(self.command, path, query=query, headers=headers, cookies=cookies, body=body)
                response = outer.function.invoke(event)
                status = int(response.get("statusCode", 200))
                outer.requests.append((self.command, path, status))
                payload = response_body(response)
                self.send_response(status)
                for name, value in (response.get("headers") or {}).items():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(name, value)
                for cookie in response.get("cookies") or []:
                    self.send_header("set-cookie", cookie)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _child() -> None:
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # the handler's prints and logs never mix with the answers
    module = importlib.import_module("infinstor_jupyterlab.tracking_service.serverless")
    for line in sys.stdin:
        request = json.loads(line)
        try:
            response = getattr(module, request["handler"])(request["event"], None)
            answer = {"response": response}
        except BaseException as exc:
            import traceback

            answer = {"error": f"{type(exc).__name__}: {exc}\n{traceback.format_exc()[-2000:]}"}
        out.write(json.dumps(answer) + "\n")
        out.flush()


if __name__ == "__main__":
    _child()
