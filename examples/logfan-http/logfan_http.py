"""A logfan sink that POSTs each batch to an HTTP endpoint as JSON lines (one record a line).

The answer decides what logfan does with the batch: 2xx, written; 429, 5xx, a timeout or a
connection error, retried later (a ``Retry-After`` in seconds is honoured: until then the sink
says so without sending); any other status, refused for good (the lines go to the sink's
dead-letter queue).
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse
from collections.abc import Sequence
from typing import ClassVar

from logfan.sinks.base import Options, PermanentSinkError, Record, RetryableSinkError

__all__ = ["HttpSink"]

#: statuses that mean "not now": the batch is sent again later.
RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})


class HttpSink:
    """POSTs each batch to ``url``; see the module docstring for how the answer is read."""

    #: one line of help per option, shown by `logfan sinks http`.
    OPTION_HELP: ClassVar[dict[str, str]] = {
        "url": "where to POST each batch: http://HOST[:PORT]/PATH or https://...",
        "timeout": "seconds to wait for the endpoint's answer",
        "headers": "extra request headers, NAME: value (an Authorization, say)",
    }

    def __init__(self, name: str, options: Options) -> None:
        self.name = name
        self.url: str = options.get_str("url")
        self.timeout: float = options.get_seconds("timeout", 10.0, maximum=300)
        headers = options.get_raw("headers", {})
        options.finish()
        parts = urllib.parse.urlsplit(self.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise options.error(
                "url", f"expected http://HOST[:PORT]/PATH or https://..., got {self.url!r}"
            )
        if not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            raise options.error("headers", f"expected a mapping of NAME: value, got {headers!r}")
        self.headers = {"Content-Type": "application/x-ndjson", **headers}
        self._parts = parts
        self._conn: http.client.HTTPConnection | None = None
        self._not_before = 0.0

    def open(self) -> None:
        """Make the connection object (it connects on the first request)."""
        self._connection()

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = (
                http.client.HTTPSConnection
                if self._parts.scheme == "https"
                else http.client.HTTPConnection
            )
            self._conn = cls(self._parts.hostname or "", self._parts.port, timeout=self.timeout)
        return self._conn

    def write(self, records: Sequence[Record]) -> None:
        """POST the batch; return once the endpoint answered 2xx, else raise."""
        wait = self._not_before - time.monotonic()
        if wait > 0:
            raise RetryableSinkError(
                f"sink {self.name!r}: {self.url} asked to wait {wait:.0f} s more"
            )
        body = "".join(json.dumps(r._asdict(), ensure_ascii=False) + "\n" for r in records)
        conn = self._connection()
        try:
            conn.request("POST", self._parts.path or "/", body.encode("utf-8"), self.headers)
            answer = conn.getresponse()
            answer.read()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise RetryableSinkError(
                f"sink {self.name!r}: cannot POST to {self.url}: {exc}"
            ) from exc
        if 200 <= answer.status < 300:
            return
        reason = f"sink {self.name!r}: {self.url} answered {answer.status} {answer.reason}"
        if answer.status in RETRYABLE:
            after = answer.getheader("Retry-After", "")
            if after.isdigit():
                self._not_before = time.monotonic() + int(after)
            raise RetryableSinkError(reason)
        raise PermanentSinkError(reason)

    def flush(self) -> None:
        """Nothing to do: a 2xx answer means the endpoint has the batch."""

    def close(self) -> None:
        """Drop the connection; the next write makes a new one."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
