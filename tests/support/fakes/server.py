"""A small fake HTTP server for tests: routes at real API paths, every request recorded, and
scripted failures (a status with a body, or a connection that hangs) for the next requests.

Runs in a thread of the test process on a free loopback port. Subclasses declare routes."""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Recorded:
    """One request as the fake saw it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() on arrival

    @property
    def form(self) -> dict[str, str]:
        """The urlencoded body, last value per key (Twilio and Stripe post forms)."""
        return {k: v[-1] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


@dataclass
class Reply:
    status: int
    body: Any = None  # dict/list -> JSON, str/bytes as is
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Scripted:
    reply: Reply | None  # None: hang until the server stops (or, with delay, answer normally late)
    path_contains: str
    times: int
    delay: float = 0.0


Handler = Callable[[Recorded, re.Match], Reply]


class FakeServer:
    """Subclasses register routes with `self.route(method, regex, handler)` in `setup_routes`."""

    name = "fake"

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._routes: list[tuple[str, re.Pattern, Handler]] = []
        self._script: deque[_Scripted] = deque()
        # (starts, ends, reply or None to hang): time windows in which the provider is down.
        self._outages: list[tuple[float, float, Reply | None]] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        self.setup_routes()
        fake = self

        class _RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                fake._handle(self)

            do_POST = do_DELETE = do_PUT = do_PATCH = do_GET

            def log_message(self, *args: Any) -> None:  # quiet
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _RequestHandler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name=f"{self.name}-server", daemon=True
        )

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> FakeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()  # let hung handlers go
        self._httpd.shutdown()
        self._httpd.server_close()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    # --- scripting -----------------------------------------------------------------------------
    def setup_routes(self) -> None:
        """Override: register the provider's API paths."""

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self._routes.append((method.upper(), re.compile(f"^{pattern}$"), handler))

    def fail_next(
        self,
        status: int,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        times: int = 1,
        path_contains: str = "",
    ) -> None:
        """Answer the next `times` matching requests with this status instead of the route's."""
        with self._lock:
            self._script.append(_Scripted(Reply(status, body, headers or {}), path_contains, times))

    def hang_next(self, *, times: int = 1, path_contains: str = "") -> None:
        """Accept the next matching requests and never answer them (until the server stops)."""
        with self._lock:
            self._script.append(_Scripted(None, path_contains, times))

    def delay_next(self, seconds: float, *, times: int = 1, path_contains: str = "") -> None:
        """Answer the next matching requests normally, but only after `seconds`."""
        with self._lock:
            self._script.append(_Scripted(None, path_contains, times, delay=seconds))

    def outage(
        self, *, seconds: float, status: int | None = None, body: Any = None, start_in: float = 0.0
    ) -> None:
        """From `start_in` seconds from now, for `seconds`: answer every request with `status`,
        or (status None) hold it unanswered until the window ends, then drop the connection."""
        starts = time.monotonic() + start_in
        reply = Reply(status, body or {"message": "Service Unavailable"}, {}) if status else None
        with self._lock:
            self._outages.append((starts, starts + seconds, reply))

    def _outage_now(self) -> tuple[float, Reply | None] | None:
        now = time.monotonic()
        with self._lock:
            for starts, ends, reply in self._outages:
                if starts <= now < ends:
                    return ends, reply
        return None

    def requests_to(self, path_contains: str, method: str | None = None) -> list[Recorded]:
        return [
            r
            for r in list(self.requests)
            if path_contains in r.path and (method is None or r.method == method.upper())
        ]

    # --- serving ------------------------------------------------------------------------------
    def _scripted_for(self, path: str) -> _Scripted | None:
        with self._lock:
            for entry in self._script:
                if entry.path_contains in path:
                    entry.times -= 1
                    if entry.times <= 0:
                        self._script.remove(entry)
                    return entry
        return None

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        parts = urlsplit(handler.path)
        recorded = Recorded(
            method=handler.command,
            path=parts.path,
            query=parse_qs(parts.query),
            headers=dict(handler.headers.items()),
            body=body,
            at=time.monotonic(),
        )
        with self._lock:
            self.requests.append(recorded)
        outage = self._outage_now()
        if outage is not None:
            ends, reply = outage
            if reply is None:
                self._release.wait(max(0.0, ends - time.monotonic()))
                handler.close_connection = True
                return
            self._send(handler, reply)
            return
        scripted = self._scripted_for(parts.path)
        if scripted is not None and scripted.delay:
            self._release.wait(scripted.delay)
            scripted = None
        if scripted is not None and scripted.reply is None:
            self._release.wait(60)
            handler.close_connection = True
            return
        reply = scripted.reply if scripted else self._dispatch(recorded)
        self._send(handler, reply)

    def _dispatch(self, recorded: Recorded) -> Reply:
        for method, pattern, route_handler in self._routes:
            match = pattern.match(recorded.path)
            if match and method == recorded.method:
                return route_handler(recorded, match)
        return Reply(404, {"error": {"code": "not_found", "message": f"no route for {recorded.path}"}})

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, reply: Reply) -> None:
        if isinstance(reply.body, (dict, list)):
            payload = json.dumps(reply.body).encode()
            content_type = "application/json"
        else:
            payload = reply.body.encode() if isinstance(reply.body, str) else (reply.body or b"")
            content_type = "text/plain"
        handler.send_response(reply.status)
        headers = {"Content-Type": content_type, **reply.headers, "Content-Length": str(len(payload))}
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(payload)
