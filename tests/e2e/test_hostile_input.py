"""Hostile lines end to end, through every built-in sink of a real daemon (issue 7).

A corpus of lines with CR, LF, CRLF, ESC sequences, NUL and other C0 controls, invalid UTF-8, a
1 MiB and a 100 MiB line travels two ways into one daemon, on RabbitMQ and the embedded broker:

- ``logfan emit`` reading stdin. It splits on LF (so an LF in the middle *makes* two lines), takes
  CRLF as LF, keeps invalid UTF-8 visible as ``\\xNN`` text, and cuts a line longer than
  ``max_line_bytes`` (64 KiB) with ``...[truncated N bytes]``. The 100 MiB line is written to its
  stdin from a thread in 1 MiB chunks; the emitter's peak RSS (VmHWM) is measured.
- A foreign AMQP publisher: plain bodies (decoded as UTF-8 with U+FFFD, one line per LF) and a
  logfan v1 envelope built with ``logfan.daemon.envelope.encode`` whose messages hold LF and
  CRLF, the only way an embedded LF reaches a sink; and a 1 MiB line nobody cut before the
  daemon, which cuts it to the sink's ``max_line_bytes`` (64 KiB).

The daemon has every built-in sink but journald (tested at sink level in
``tests/sinks/test_journald_sink.py``, inside its own namespace): console (its stdout), a file
with the default ``control_chars: escape`` (controls written ``\\n``, ``\\r``, ``\\x1b``,
``\\x00``...; TAB kept; backslashes left alone), one with ``strip`` (controls removed), one with
``keep`` (written raw: by that policy a message holding LF *is* two physical lines there, which
is why it is not the default), syslog over UDP (``max_message_bytes`` 2048) and over TCP
(octet counting, 65536); syslog always escapes controls. For each sink the test checks the exact
text per policy, one output line (datagram, frame) per line sent, and each marker's N: the bytes
of the line that are not in the output. The truncations must be counted: the emitter says how
many lines it cut on stderr, the daemon's status file gives each sink's ``truncated``.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest
import yaml
from logfan_testkit import (
    LOGFAN,
    Daemon,
    Setup,
    TcpSyslogListener,
    UdpListener,
    read_lines,
    run_logfan,
    tally,
    wait_for,
)

from logfan.daemon.envelope import CONTENT_TYPE, encode

pytestmark = [pytest.mark.rabbitmq, pytest.mark.processes]

LIMIT = 64 * 1024  # max_line_bytes, the emitter's and every sink's default
UDP_MAX, TCP_MAX = 2048, 65536  # the syslog sink's default max_message_bytes
MIB = 1 << 20
HUGE = 100 * MIB
STAMP = "2026-11-27T06:12:59.123Z"
MARKER = re.compile(r"(.*)\.\.\.\[truncated (\d+) bytes\]\Z", re.DOTALL)
RFC5424 = re.compile(rb"\A<\d+>1 \S+ \S+ \S+ \S+ \S+ (?:-|\[.*?\]) (.*)\Z", re.DOTALL)
#: the emitter may keep a few KiB beyond its baseline (buffers, one envelope); never the line.
RSS_HEADROOM_KIB = 16 * 1024


def _control(ch: str) -> bool:
    """What the README calls a control character: C0 but TAB, DEL, C1, U+2028 and U+2029."""
    code = ord(ch)
    return (code < 0x20 and ch != "\t") or 0x7F <= code <= 0x9F or code in (0x2028, 0x2029)


def escape(text: str) -> str:
    """The ``escape`` policy as the README states it: named escapes for LF and CR, ``x``-hex
    escapes for the rest of C0 and DEL, ``u``-hex escapes for C1 and the separators, TAB kept."""
    named = {"\n": "\\n", "\r": "\\r"}

    def one(ch: str) -> str:
        if not _control(ch):
            return ch
        code = ord(ch)
        return named.get(ch) or (f"\\x{code:02x}" if code <= 0x7F else f"\\u{code:04x}")

    return "".join(one(ch) for ch in text)


def strip(text: str) -> str:
    """The ``strip`` policy: the same characters removed, TAB kept."""
    return "".join(ch for ch in text if not _control(ch))


def keep(text: str) -> str:
    """The ``keep`` policy: the text as it came."""
    return text


@dataclass(frozen=True)
class Line:
    """One line as the daemon's sinks receive it; its first word names it everywhere.

    A big line is ``message`` followed by ``fill`` up to ``size`` UTF-8 bytes; every sink must
    cut it and say how many of those bytes it cut.
    """

    key: str
    message: str
    fill: str = ""
    size: int = 0


def big_bytes(line: Line) -> bytes:
    """The whole of a big line (only the 1 MiB ones are ever built in memory)."""
    head = line.message.encode()
    fill = line.fill.encode()
    return head + fill * ((line.size - len(head)) // len(fill))


# What the emitter's stdin gets, line by line (with the line end written), and the lines the
# sinks receive from it.
EMITTER_INPUT: list[bytes] = [
    b"E02 innocent\rFORGED 2026-11-27T06:00:00Z web1 sshd: root login\n",
    b"E03 ends in CRLF\r\n",
    b"E04 two CRs\r\r\n",
    b"E05 \x1b[2J\x1b[H\x1b[31mred\x1b[0m \x1b]0;pwned title\x07 end\n",
    b"E06 nul\x00in the\x00middle\x00\n",
    b"E07 tab\there bs\x08 del\x7f bel\x07 vt\x0b ff\x0c us\x1f\n",
    b"E08 bad \xff\xfe utf8 \xc3( surrogate \xed\xa0\x80 end\n",
    "E09 ünïcode ✓ 日本語 line-separator\u2028 nel\u0085 csi\u009b\n".encode(),
    b"E10 first half\nE10b second half\n",
]
EMITTER_LINES: list[Line] = [
    Line("E02", "E02 innocent\rFORGED 2026-11-27T06:00:00Z web1 sshd: root login"),
    Line("E03", "E03 ends in CRLF"),
    Line("E04", "E04 two CRs\r"),
    Line("E05", "E05 \x1b[2J\x1b[H\x1b[31mred\x1b[0m \x1b]0;pwned title\x07 end"),
    Line("E06", "E06 nul\x00in the\x00middle\x00"),
    Line("E07", "E07 tab\there bs\x08 del\x7f bel\x07 vt\x0b ff\x0c us\x1f"),
    Line("E08", "E08 bad \\xff\\xfe utf8 \\xc3( surrogate \\xed\\xa0\\x80 end"),
    Line("E09", "E09 ünïcode ✓ 日本語 line-separator\u2028 nel\u0085 csi\u009b"),
    Line("E10", "E10 first half"),
    Line("E10b", "E10b second half"),
]
# 2-byte characters after an odd prefix: the 64 KiB cut falls inside a character.
E11 = Line("E11", "E11 x", "é", 5 + 2 * (MIB // 2))
E12 = Line("E12", "E12 ", "y", HUGE)
E13 = Line("E13", "E13 the line after the big ones")
FIRST = Line("E01", "E01 plain line, sent alone to measure the emitter's baseline RSS")

# What a foreign publisher sends: plain bodies, then one envelope, then a 1 MiB body.
RAW_BODIES: list[bytes] = [
    b"R01 plain line from a foreign publisher",
    b"R02 innocent\rFORGED 2026-11-27T06:00:00Z web1 sshd: root login",
    b"R03 first\r\nR03b second\r\n",
    b"R04 \x1b[2J\x1b[31mred\x1b[0m",
    b"R05 nul\x00byte",
    b"R06 bad \xff\xfe utf8 \xc3( end",
]
RAW_LINES: list[Line] = [
    Line("R01", "R01 plain line from a foreign publisher"),
    Line("R02", "R02 innocent\rFORGED 2026-11-27T06:00:00Z web1 sshd: root login"),
    Line("R03", "R03 first"),
    Line("R03b", "R03b second"),
    Line("R04", "R04 \x1b[2J\x1b[31mred\x1b[0m"),
    Line("R05", "R05 nul\x00byte"),
    Line("R06", "R06 bad \ufffd\ufffd utf8 \ufffd( end"),
]
ENVELOPE_LINES: list[Line] = [
    Line("R07", "R07 first\nFORGED 2026-11-27T06:00:00Z web1 sshd: root login"),
    Line("R08", "R08 CRLF inside\r\nsecond half"),
    Line("R09", "R09 esc \x1b[2J nul \x00 del \x7f end"),
]
# 3-byte characters after an odd prefix: the daemon's cut falls inside a character too.
R10 = Line("R10", "R10 x", "日", 5 + 3 * (MIB // 3))
R11 = Line("R11", "R11 the line after")

SENT: list[Line] = [FIRST, *EMITTER_LINES, E11, E12, E13, *RAW_LINES, *ENVELOPE_LINES, R10, R11]
#: lines longer than max_line_bytes when they reach the daemon: only the foreign publisher's.
CUT_BY_DAEMON = 1


def corpus() -> Iterator[bytes]:
    """The emitter's input: the corpus, the 1 MiB line, the 100 MiB line in 1 MiB pieces."""
    yield from EMITTER_INPUT
    yield big_bytes(E11) + b"\n"
    head = E12.message.encode()
    yield head + b"y" * (MIB - len(head))
    chunk = b"y" * MIB
    for _ in range(HUGE // MIB - 1):
        yield chunk
    yield b"\n" + E13.message.encode() + b"\n"


def feed(stdin: IO[bytes], pieces: Iterator[bytes], errors: list[BaseException]) -> None:
    """Write ``pieces`` (the pipe holds 64 KiB: each write waits for the emitter to read)."""
    try:
        for piece in pieces:
            stdin.write(piece)
        stdin.flush()
    except BaseException as exc:  # noqa: BLE001 - reported by the test, not lost in the thread
        errors.append(exc)


def peak_rss_kib(pid: int, seen: int) -> int:
    """The process's peak resident set so far (VmHWM: its own, counted since its exec)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return seen
    match = re.search(r"^VmHWM:\s+(\d+) kB$", status, re.MULTILINE)
    return max(seen, int(match[1])) if match else seen


def emit_measured(
    config: Path, workdir: Path, name: str, pieces: Iterator[bytes], arrived: Callable[[], bool]
) -> tuple[int, int]:
    """Run ``logfan emit`` with ``pieces`` on its stdin; its exit code and peak RSS in KiB.

    VmHWM is sampled while the input streams and once more when its last line ``arrived`` in a
    sink: the emitter has then read and published everything and, its stdin still open, waits.
    """
    out, err = workdir / f"{name}.out", workdir / f"{name}.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            [*LOGFAN, "emit", "-c", str(config), "-t", "hostile"],
            stdin=subprocess.PIPE,
            stdout=stdout,
            stderr=stderr,
        )
    assert proc.stdin is not None
    errors: list[BaseException] = []
    writer = threading.Thread(target=feed, args=(proc.stdin, pieces, errors))
    writer.start()
    peak = 0
    try:
        while writer.is_alive() and proc.poll() is None:
            peak = peak_rss_kib(proc.pid, peak)
            writer.join(0.01)
        writer.join(120)  # a hang guard only
        wait_for(arrived, what=f"the last line of {name} in a sink")
        peak = peak_rss_kib(proc.pid, peak)
        proc.stdin.close()
        code = proc.wait(120)  # a hang guard only
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not errors, f"writing the emitter's stdin failed: {errors!r}"
    return code, peak


def check_cut(where: str, got: str, line: Line, limit: int) -> str | None:
    """Why ``got`` is not ``line`` cut to at most ``limit`` bytes with a true marker (or None)."""
    match = MARKER.fullmatch(got)
    if match is None:
        return f"{where}: {line.key} ({line.size} bytes) has no marker at its end: {got[-60:]!r}"
    kept, cut = match[1], int(match[2])
    kept_bytes = len(kept.encode("utf-8", "surrogateescape"))
    if kept_bytes + cut != line.size:
        return (
            f"{where}: {line.key}: the marker says {cut} bytes were cut, but "
            f"{line.size - kept_bytes} of its {line.size} bytes are missing (kept {kept_bytes}; "
            f"end of line: {got[-70:]!r})"
        )
    if not kept.startswith(line.message) or kept[len(line.message) :].strip(line.fill):
        return f"{where}: {line.key}: what is kept is not the line's start: {kept[-60:]!r}"
    if not limit - 64 < kept_bytes <= limit:
        return f"{where}: {line.key}: kept {kept_bytes} bytes for a limit of {limit}"
    return None


def compare(
    sink: str, got: list[str], render: Callable[[str], str], problems: list[str]
) -> dict[str, str]:
    """Check one sink's lines against SENT; print its tally; its lines by key."""
    keys = [line.split(" ", 1)[0] for line in got]
    _, lost, duplicated = tally(sink, [s.key for s in SENT], keys)
    if lost or duplicated or len(got) != len(SENT):
        problems.append(f"{sink}: {len(got)} lines for {len(SENT)} sent; keys {keys}")
    by_key = dict(zip(keys, got, strict=False))
    for line in SENT:
        text = by_key.get(line.key)
        if text is None:
            continue
        if line.size:
            problem = check_cut(sink, text, line, LIMIT)
            if problem:
                problems.append(problem)
        elif text != render(line.message):
            problems.append(f"{sink}: {line.key}: got {text!r}, want {render(line.message)!r}")
    return by_key


def fold(physical: list[str]) -> list[str]:
    """The ``keep`` file's lines, each continuation (no known key first) joined to its line."""
    known = {line.key for line in SENT}
    logical: list[str] = []
    for text in physical:
        if logical and text.split(" ", 1)[0] not in known:
            logical[-1] += "\n" + text
        else:
            logical.append(text)
    return logical


def check_syslog(
    sink: str, frames: list[bytes], limit: int, received: dict[str, str], problems: list[str]
) -> int:
    """Check the syslog frames; return how many the sink had to cut to fit ``limit``."""
    msgs: list[bytes] = []
    for frame in frames:
        match = RFC5424.match(frame)
        if match is None:
            problems.append(f"{sink}: not an RFC 5424 message: {frame[:120]!r}")
            continue
        msgs.append(match[1])
        if len(frame) > limit:
            problems.append(f"{sink}: a {len(frame)}-byte message over the {limit}-byte limit")
    keys = [m.split(b" ", 1)[0].decode() for m in msgs]
    _, lost, duplicated = tally(sink, [s.key for s in SENT], keys)
    if lost or duplicated or len(frames) != len(SENT):
        problems.append(f"{sink}: {len(frames)} messages for {len(SENT)} lines; keys {keys}")
    cut_here = 0
    for frame, msg, key in zip(frames, msgs, keys, strict=False):
        if key not in received:
            continue
        want = escape(received[key]).encode()  # the MSG the sink built, before its own cut
        header = len(frame) - len(msg)
        if header + len(want) <= limit:
            if msg != want:
                problems.append(f"{sink}: {key}: got {msg[:200]!r}, want {want[:200]!r}")
            continue
        cut_here += 1
        marked = MARKER.fullmatch(msg.decode())
        if marked is None:
            problems.append(f"{sink}: {key}: {len(want)} bytes and no marker: {msg[-60:]!r}")
            continue
        kept, cut = marked[1].encode(), int(marked[2])
        if not want.startswith(kept) or len(kept) + cut != len(want):
            problems.append(f"{sink}: {key}: marker says {cut} bytes of {len(want)} cut")
        if len(frame) < limit - 8:
            problems.append(f"{sink}: {key}: cut to {len(frame)} bytes, limit {limit}")
    return cut_here


def write_config(setup: Setup, sinks: dict[str, dict[str, Any]], status: Path) -> Path:
    """A config with a status file, so the daemon reports each sink's figures."""
    path = setup.tmp / "logfan.yaml"
    doc = {
        "broker": {"url": setup.url, "exchange": setup.exchange},
        "sinks": sinks,
        "daemon": {"status_file": str(status)},
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def read_status(path: Path) -> dict[str, Any]:
    """The daemon's per-sink figures (empty until its first write)."""
    try:
        doc: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    sinks: dict[str, Any] = doc.get("sinks", {})
    return sinks


def settled(predicate: Callable[[], bool], timeout: float = 30.0) -> bool:
    """Poll like ``wait_for`` but let the caller report what is missing (no failure here)."""
    try:
        wait_for(predicate, timeout=timeout)
    except pytest.fail.Exception:
        return False
    return True


@pytest.fixture
def tcp_listener() -> Iterator[TcpSyslogListener]:
    """A TCP syslog receiver reading RFC 6587 octet-counted frames."""
    listener = TcpSyslogListener()
    yield listener
    listener.close()


class TestHostileInputEverySink:
    """Every line is one line in every sink, escaped, stripped or kept as the policy says."""

    def test_hostile_corpus_through_emitter_and_foreign_publisher(
        self,
        setup: Setup,
        daemons: list[Daemon],
        udp_listener: UdpListener,
        tcp_listener: TcpSyslogListener,
    ) -> None:
        """The corpus, 1 MiB and 100 MiB lines: exact output, one line each, cuts counted."""
        names = {n: setup.sink(n) for n in ("console", "escape", "strip", "keep", "udp", "tcp")}
        out = setup.tmp / "out"
        files = {n: out / f"{n}.log" for n in ("escape", "strip", "keep")}
        status = setup.tmp / "status.json"
        config = write_config(
            setup,
            {
                names["console"]: {"type": "console", "format": "{message}"},
                names["escape"]: {
                    "type": "file",
                    "path": str(files["escape"]),
                    "format": "{message}",
                },
                names["strip"]: {
                    "type": "file",
                    "path": str(files["strip"]),
                    "format": "{message}",
                    "control_chars": "strip",
                },
                names["keep"]: {
                    "type": "file",
                    "path": str(files["keep"]),
                    "format": "{message}",
                    "control_chars": "keep",
                },
                names["udp"]: {"type": "syslog", "address": f"udp://127.0.0.1:{udp_listener.port}"},
                names["tcp"]: {"type": "syslog", "address": f"tcp://127.0.0.1:{tcp_listener.port}"},
            },
            status,
        )
        daemon = Daemon(config, setup.tmp).start()
        daemons.append(daemon)

        # (a) the emitter: a one-line baseline, then the corpus with the big lines, streamed.
        def arrived(line: Line) -> Callable[[], bool]:
            return lambda: any(t.startswith(line.key + " ") for t in read_lines(files["escape"]))

        first = iter([FIRST.message.encode() + b"\n"])
        code, base_rss = emit_measured(config, setup.tmp, "emit-base", first, arrived(FIRST))
        assert code == 0, (setup.tmp / "emit-base.err").read_text()
        code, big_rss = emit_measured(config, setup.tmp, "emit-corpus", corpus(), arrived(E13))
        emit_err = (setup.tmp / "emit-corpus.err").read_text()
        assert code == 0, emit_err
        print(
            f"emitter peak RSS: {base_rss} KiB for one line, "
            f"{big_rss} KiB for the corpus with a {HUGE // MIB} MiB line"
        )
        # (b) a foreign publisher: plain bodies, an envelope with LF inside, an uncut 1 MiB line.
        setup.publish_many(RAW_BODIES, app_id="foreign")
        envelope = encode(
            [(STAMP, line.message) for line in ENVELOPE_LINES],
            msg_id="hostile",
            host="web1",
            tag="foreign",
            pid=1,
            severity="info",
        )
        setup.publish_raw(envelope, content_type=CONTENT_TYPE, content_encoding="binary")
        setup.publish_many([big_bytes(R10), R11.message.encode()], app_id="foreign")

        def delivered() -> bool:
            figures = read_status(status)
            return all(
                figures.get(full, {}).get("delivered") == len(SENT) for full in names.values()
            )

        problems: list[str] = []
        if not settled(delivered, timeout=60):
            problems.append(f"the daemon did not report {len(SENT)} lines delivered per sink")
        figures = read_status(status)
        print(run_logfan("status", "-c", str(config)).stdout.decode())

        physical_keep = len(SENT) + sum(s.message.count("\n") for s in SENT)
        settled(
            lambda: (
                len(read_lines(daemon.stdout)) >= len(SENT)
                and all(len(read_lines(files[n])) >= len(SENT) for n in ("escape", "strip"))
                and len(read_lines(files["keep"])) >= physical_keep
                and len(udp_listener.datagrams) >= len(SENT)
                and len(tcp_listener.frames) >= len(SENT)
            ),
            timeout=10,
        )
        assert daemon.stop() == 0, daemon.logs()

        # The emitter cut the 1 MiB and the 100 MiB line, and said so.
        if "logfan emit: 2 line(s) longer than 65536 bytes were truncated" not in emit_err:
            problems.append(f"the emitter's stderr does not count 2 cut lines: {emit_err!r}")
        if big_rss > base_rss + RSS_HEADROOM_KIB:
            problems.append(f"emitter peak RSS {big_rss} KiB, baseline {base_rss} KiB")

        compare("console", read_lines(daemon.stdout), escape, problems)
        compare("file escape", read_lines(files["escape"]), escape, problems)
        compare("file strip", read_lines(files["strip"]), strip, problems)
        physical = read_lines(files["keep"])
        print(f"file keep: {len(physical)} physical lines for {len(SENT)} lines (LF kept raw)")
        if len(physical) != physical_keep:
            problems.append(f"file keep: {len(physical)} physical lines, want {physical_keep}")
        kept = compare("file keep", fold(physical), keep, problems)
        # syslog escapes what the sink received (a big line: as the keep file shows it, already
        # cut to max_line_bytes), then cuts the message to max_message_bytes.
        received = {s.key: kept.get(s.key, "") if s.size else s.message for s in SENT}
        syslog_cuts = {
            "udp": check_syslog(
                "syslog udp", list(udp_listener.datagrams), UDP_MAX, received, problems
            ),
            "tcp": check_syslog(
                "syslog tcp", list(tcp_listener.frames), TCP_MAX, received, problems
            ),
        }

        # Counted: the lines the daemon cut to max_line_bytes, plus each syslog sink's own cuts.
        for short, full in names.items():
            want = CUT_BY_DAEMON + syslog_cuts.get(short, 0)
            got = figures.get(full, {}).get("truncated")
            print(f"sink {short}: truncated={got} (expected {want})")
            if got != want:
                problems.append(f"sink {short}: status file says truncated={got}, want {want}")
        assert not problems, "\n".join(problems)
