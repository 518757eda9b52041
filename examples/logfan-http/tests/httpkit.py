"""A real HTTP endpoint on loopback for the sink's tests: it keeps what it accepted."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Endpoint:
    """Answers each POST with the next status of ``answers`` (then 200), keeping the JSON lines
    of every request it answered 2xx. ``stop()`` and ``start()`` restart it on the same port."""

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.answers: list[tuple[int, dict[str, str]]] = []
        self.accepted: list[dict[str, Any]] = []
        self.requests = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/ingest"

    def answer(self, status: int, times: int = 1, headers: dict[str, str] | None = None) -> None:
        """Answer the next ``times`` requests with ``status`` (and ``headers``)."""
        with self._lock:
            self.answers.extend([(status, headers or {})] * times)

    def lines(self) -> list[str]:
        """The message of every record accepted, in order."""
        with self._lock:
            return [record["message"] for record in self.accepted]

    def start(self) -> None:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with endpoint._lock:
                    endpoint.requests += 1
                    status, headers = endpoint.answers.pop(0) if endpoint.answers else (200, {})
                    if 200 <= status < 300:
                        endpoint.accepted += [json.loads(line) for line in body.splitlines()]
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                """Quiet: the tests read what was accepted, not a log."""

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
