"""The 1,000 lines every syslog test sends, and what a receiver must have parsed from each."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from typing import Any

from logfan.daemon.envelope import CONTENT_TYPE
from logfan.sinks.base import SEVERITIES, Record

SD_ID = "logfan@32473"  # 32473 is the documentation PEN of RFC 5612: right for tests
FACILITY = "local3"
MAX_BYTES = 2048
LINES = 1000
GROUP = 100  # lines per envelope; host, tag and pid are the envelope's
NEWLINE_AT, LONG_AT, QUOTES_AT = 500, 700, 900
_START = dt.datetime(2026, 11, 27, 6, 12, 59, 123000, tzinfo=dt.UTC)
_MARKER = re.compile(r"(.*)\.\.\.\[truncated (\d+) bytes\]", re.DOTALL)


def _identity(group: int) -> tuple[str, str, str]:
    """host, tag, pid of a group: group 3 needs sanitizing, group 4 has no pid."""
    if group == 3:
        return "hôte 1", 'my "app"/ü]', "77"
    return "web1", "app", "-" if group == 4 else "4242"


def _message(i: int) -> str:
    if i == NEWLINE_AT:
        return f"first half {i}\nsecond half {i}"
    if i == LONG_AT:
        return f"long line {i} " + "é" * 3000
    if i == QUOTES_AT:
        return f'quotes {i} "a] \\b [c'
    if i % 5 == 1:
        return f"ligne {i}: naïve café 日本語 🙂 Ελληνικά"
    return f"line {i}"


def corpus(run: str | None = None) -> list[Record]:
    """The lines, each with its own severity, timestamp and message id ``<run>-<group>-<n>``."""
    run = run or uuid.uuid4().hex[:8]
    records = []
    for i in range(LINES):
        host, tag, pid = _identity(i // GROUP)
        stamp = _START + dt.timedelta(milliseconds=i)
        records.append(
            Record(
                message=_message(i),
                timestamp=stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                host=host,
                tag=tag,
                pid=pid,
                severity=SEVERITIES[i % len(SEVERITIES)],
                msgid=f"{run}-{i // GROUP}-{i % GROUP}",
            )
        )
    return records


def envelopes(records: list[Record]) -> list[bytes]:
    """The records as logfan envelopes (what ``logfan emit`` publishes), one per group."""
    bodies = []
    for start in range(0, len(records), GROUP):
        group = records[start : start + GROUP]
        first = group[0]
        doc = {
            "v": 1,
            "id": first.msgid.rsplit("-", 1)[0],
            "host": first.host,
            "tag": first.tag,
            "pid": first.pid,
            "severity": "info",
            "lines": [[r.timestamp, r.message, r.severity] for r in group],
        }
        bodies.append(json.dumps(doc, ensure_ascii=False).encode())
    return bodies


ENVELOPE_PROPS = {"content_type": CONTENT_TYPE, "content_encoding": "binary"}


def expected(record: Record) -> dict[str, Any]:
    """What syslog-ng must parse from the message logfan sends for ``record``."""
    sdata = {"host": record.host, "tag": record.tag, "msgid": record.msgid}
    sdata["timestamp"] = record.timestamp
    if record.pid != "-":
        sdata["pid"] = record.pid
    header_host, header_tag = {"hôte 1": "h_te_1"}, {'my "app"/ü]': 'my_"app"/_]'}
    moment = dt.datetime.fromisoformat(record.timestamp)
    return {
        "facility": FACILITY,
        "level": record.severity,
        "host": header_host.get(record.host, record.host),
        "program": header_tag.get(record.tag, record.tag),
        "pid": "" if record.pid == "-" else record.pid,
        "msgid": "",
        "msg": record.message.replace("\n", "\\n"),
        "stamp": f"{moment.timestamp():.3f}",
        "_SDATA": {SD_ID: sdata},
    }


def check_truncated(got: str, sent: str) -> str | None:
    """Why ``got`` is not ``sent`` cut on a character boundary with an honest marker."""
    marked = _MARKER.fullmatch(got)
    if marked is None:
        return f"no truncation marker at the end of {got[-60:]!r}"
    kept, cut = marked[1], int(marked[2])
    if not sent.startswith(kept) or len(kept.encode()) + cut != len(sent.encode()):
        return f"kept {len(kept.encode())} bytes and says {cut} were cut of {len(sent.encode())}"
    return None


def compare(records: list[Record], got: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """Message ids received (for the tally) and every mismatch between sent and parsed."""
    by_id = {r.msgid: r for r in records}
    ids, problems = [], []
    for fields in got:
        msgid = fields.get("_SDATA", {}).get(SD_ID, {}).get("msgid", "?")
        ids.append(msgid)
        record = by_id.get(msgid)
        if record is None:
            problems.append(f"unexpected message {fields!r}")
            continue
        want = expected(record)
        if record.message.startswith("long line"):
            reason = check_truncated(fields.get("msg", ""), record.message)
            if reason:
                problems.append(f"{msgid}: {reason}")
            want = {**want, "msg": fields.get("msg")}
        if fields != want:
            diff = {k: (fields.get(k), want.get(k)) for k in want.keys() | fields.keys()}
            problems.append(f"{msgid}: {[(k, v) for k, v in diff.items() if v[0] != v[1]]}")
    return ids, problems
