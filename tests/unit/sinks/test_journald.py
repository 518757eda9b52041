"""The journald sink, against a real systemd-journald started for each test in its own namespace.

libsystemd always sends to the fixed path /run/systemd/journal/socket, so each test runs the sink
in a child process inside private mount and network namespaces (``unshare``): a tmpfs hides the
host's /run there, the real ``systemd-journald`` binary is started with a test journald.conf
(volatile storage under the test's folder, no forwarding, no rate limit, no kernel log) and the
child waits for its ``READY=1``. After the batches, ``journalctl --sync`` makes journald store
everything it received, journald is stopped, and the test reads the journal files back with
``journalctl --directory ... -o export`` (exact bytes, binary-safe). The host's own /run and
journal are never touched.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest

from logfan.sinks.base import SEVERITIES, Options, Record, SinkConfigError
from logfan.sinks.journald import JournaldSink

JOURNALD = "/lib/systemd/systemd-journald"
JOURNALCTL = ("journalctl", "--all", "--no-pager", "--output", "export", "--directory")
STAMP = "2026-11-27T06:12:59.123Z"

JOURNALD_CONF = """\
[Journal]
Storage=volatile
RateLimitIntervalSec=0
ForwardToSyslog=no
ForwardToKMsg=no
ForwardToConsole=no
ForwardToWall=no
ReadKMsg=no
"""

# Runs inside the namespaces: argv[1] is the test's folder, stdin a JSON spec
# {"journald": "running" | "absent" | "stale", "options": {...}, "batches": [[record, ...], ...]};
# prints {"error": null} or {"error": [class name, message]} (the first error ends the run).
RUNNER = r"""
import json, os, signal, socket, subprocess, sys
from logfan.sinks.base import Options, Record
from logfan.sinks.journald import JournaldSink

work = sys.argv[1]
spec = json.load(sys.stdin)
subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/run"], check=True)
os.makedirs("/run/log")
os.makedirs(work + "/log", exist_ok=True)
subprocess.run(["mount", "--bind", work + "/log", "/run/log"], check=True)
with open(work + "/journald.conf", "w") as conf:
    conf.write(JOURNALD_CONF)
subprocess.run(["mount", "--bind", work + "/journald.conf", "/etc/systemd/journald.conf"],
               check=True)
if os.path.isdir("/var/log/journal"):
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", "/var/log/journal"], check=True)
journald = None
if spec["journald"] == "running":
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind("/run/notify")
    notify.settimeout(30)  # a hang guard only: journald is ready in well under a second
    env = dict(os.environ, NOTIFY_SOCKET="/run/notify")
    with open(work + "/journald.out", "wb") as out:
        journald = subprocess.Popen([JOURNALD], env=env, stdout=out, stderr=out)
    while b"READY=1" not in notify.recv(4096).split(b"\n"):
        pass
elif spec["journald"] == "stale":
    # the socket file a killed journald leaves behind: present, nobody reading it
    os.makedirs("/run/systemd/journal")
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    stale.bind("/run/systemd/journal/socket")
    stale.close()
error = None
try:
    if "log_events" in spec:  # the daemon's own logs, as under systemd
        import structlog
        from logfan.daemon.run import logs
        os.environ["JOURNAL_STREAM"] = "8:1"
        logs.configure()
        for event in spec["log_events"]:
            structlog.get_logger("logfan.test").warning(event["event"], **event["fields"])
    else:
        sink = JournaldSink("jd", Options("jd", spec["options"]))
        sink.open()
        for batch in spec["batches"]:
            sink.write([Record(**r) for r in batch])
            sink.flush()
        sink.close()
except Exception as exc:
    error = [type(exc).__name__, str(exc)]
if journald is not None:
    subprocess.run(["journalctl", "--sync"], check=True)
    journald.send_signal(signal.SIGTERM)
    journald.wait(30)
print(json.dumps({"error": error}))
"""

Entry = dict[str, bytes]


def parse_export(data: bytes) -> list[Entry]:
    """Entries from ``journalctl -o export``: KEY=value lines, or KEY, a LE64 size and the bytes."""
    entries: list[Entry] = []
    entry: Entry = {}
    pos = 0
    while pos < len(data):
        end = data.index(b"\n", pos)
        line = data[pos:end]
        pos = end + 1
        if not line:
            entries.append(entry)
            entry = {}
        elif b"=" in line:
            key, _, value = line.partition(b"=")
            assert key.decode() not in entry, f"field {key!r} twice in one entry"
            entry[key.decode()] = value
        else:
            (size,) = struct.unpack("<Q", data[pos : pos + 8])
            assert line.decode() not in entry, f"field {line!r} twice in one entry"
            entry[line.decode()] = data[pos + 8 : pos + 8 + size]
            assert data[pos + 8 + size : pos + 9 + size] == b"\n"
            pos += 9 + size
    if entry:
        entries.append(entry)
    return entries


class Journal:
    """Runs the sink inside the namespaces against a fresh journald and reads what it stored."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.error: list[str] | None = None

    def run(self, batches: list[list[Record]], journald: str = "running", **options: Any) -> None:
        """Build the sink with ``options``, write ``batches``; keep the first error in ``error``."""
        self._spawn(
            {
                "journald": journald,
                "options": {"type": "journald", **options},
                "batches": [[r._asdict() for r in batch] for batch in batches],
            }
        )

    def log(self, events: list[dict[str, Any]]) -> None:
        """Configure the daemon's logging as under systemd and log ``events`` (event, fields)."""
        self._spawn({"journald": "running", "log_events": events})

    def _spawn(self, spec: dict[str, Any]) -> None:
        code = f"JOURNALD = {JOURNALD!r}\nJOURNALD_CONF = {JOURNALD_CONF!r}\n{RUNNER}"
        argv = ["unshare", "--mount", "--net", "--propagation", "private"]
        done = subprocess.run(
            [*argv, sys.executable, "-c", code, str(self.work)],
            input=json.dumps(spec).encode(),
            capture_output=True,
            check=False,
            timeout=120,  # a hang guard only
        )
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        self.error = json.loads(done.stdout.decode().splitlines()[-1])["error"]

    def entries(self) -> list[Entry]:
        """The entries that came in over the native protocol, in order (journald's own are not)."""
        done = subprocess.run(
            [*JOURNALCTL, str(self.work / "log" / "journal"), "_TRANSPORT=journal"],
            capture_output=True,
            check=True,
        )
        return parse_export(done.stdout)

    def one(self, record: Record, **options: Any) -> Entry:
        """Send ``record`` alone and return its entry (and check there is exactly one)."""
        self.run([[record]], **options)
        assert self.error is None
        entries = self.entries()
        assert len(entries) == 1, entries
        return entries[0]


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    """A journald of the test's own, in private namespaces (needs root, unshare and journald)."""
    if os.geteuid() != 0 or not shutil.which("unshare") or not os.access(JOURNALD, os.X_OK):
        pytest.fail(f"these tests need root, unshare and {JOURNALD} (`make test` as root)")
    return Journal(tmp_path)


def record(message: str = "hello", **fields: str) -> Record:
    values = {"timestamp": STAMP, "host": "web1", "tag": "build", "severity": "warning"}
    return Record(message=message, **(values | {"pid": "4242", "msgid": "5f0c-1"} | fields))


def sink(**options: Any) -> JournaldSink:
    return JournaldSink("jd", Options("jd", {"type": "journald", **options}))


class TestJournaldSink:
    """Entries as a real journald stores them; errors when journald is absent or misconfigured."""

    def test_entry_carries_the_record_and_its_metadata(self, journal: Journal) -> None:
        """MESSAGE, SYSLOG_IDENTIFIER, PRIORITY, SYSLOG_PID and the LOGFAN_* fields are stored."""
        entry = journal.one(record("disk almost full"))
        assert entry["MESSAGE"] == b"disk almost full"
        assert entry["SYSLOG_IDENTIFIER"] == b"build"
        assert entry["PRIORITY"] == b"4"
        assert entry["SYSLOG_PID"] == b"4242"
        assert entry["LOGFAN_HOST"] == b"web1"
        assert entry["LOGFAN_MSGID"] == b"5f0c-1"
        assert entry["LOGFAN_TIMESTAMP"] == STAMP.encode()
        assert entry["LOGFAN_SINK"] == b"jd"
        assert not {"CODE_FILE", "CODE_LINE", "CODE_FUNC", "MESSAGE_ID"} & set(entry)

    def test_priority_follows_the_severity(self, journal: Journal) -> None:
        """Each severity becomes its syslog number 0-7; an unknown one becomes info (6)."""
        severities = [*SEVERITIES, "error", "bogus"]
        journal.run([[record(s, severity=s) for s in severities]])
        assert journal.error is None
        got = [(e["MESSAGE"].decode(), e["PRIORITY"]) for e in journal.entries()]
        assert got == [(s, str(n).encode()) for n, s in enumerate(SEVERITIES)] + [
            ("error", b"3"),
            ("bogus", b"6"),
        ]

    def test_batches_keep_their_order(self, journal: Journal) -> None:
        """Several batches arrive as one entry per record, in order."""
        journal.run([[record(f"{b}.{i}") for i in range(50)] for b in range(3)])
        assert journal.error is None
        expected = [f"{b}.{i}".encode() for b in range(3) for i in range(50)]
        assert [e["MESSAGE"] for e in journal.entries()] == expected

    def test_embedded_newline_is_one_entry(self, journal: Journal) -> None:
        """A message with newlines (and a trailing one) is one entry holding the exact text."""
        entry = journal.one(record("first\nPRIORITY=0\nthird\n"))
        assert entry["MESSAGE"] == b"first\nPRIORITY=0\nthird\n"
        assert entry["PRIORITY"] == b"4"

    def test_non_ascii_text(self, journal: Journal) -> None:
        """Message, tag and host keep their non-ASCII characters, stored as UTF-8."""
        entry = journal.one(record("naïve café ☃ 日本語", tag="ビルド", host="hôte"))
        assert entry["MESSAGE"] == "naïve café ☃ 日本語".encode()
        assert entry["SYSLOG_IDENTIFIER"] == "ビルド".encode()
        assert entry["LOGFAN_HOST"] == "hôte".encode()

    def test_lone_surrogate_becomes_replacement_character(self, journal: Journal) -> None:
        """Text UTF-8 cannot encode is sent with U+FFFD instead of failing the batch."""
        entry = journal.one(record("bad \udcff byte"))
        assert entry["MESSAGE"] == "bad \ufffd byte".encode()

    def test_control_characters_are_kept_by_default(self, journal: Journal) -> None:
        """journald is binary-safe: ESC, CR and NUL are stored as they are."""
        entry = journal.one(record("a\x1b[2Jb\rc\x00d"))
        assert entry["MESSAGE"] == b"a\x1b[2Jb\rc\x00d"

    def test_control_characters_escaped_on_request(self, journal: Journal) -> None:
        """`control_chars: escape` writes them as visible escapes, like the file sink."""
        entry = journal.one(record("a\x1bb\nc"), control_chars="escape")
        assert entry["MESSAGE"] == b"a\\x1bb\\nc"

    def test_format_and_extra_fields(self, journal: Journal) -> None:
        """`format` shapes MESSAGE; `fields` adds fields and may replace SYSLOG_IDENTIFIER."""
        fields = {"BUILD_HOST": "{host}", "LINE": "{tag}/{severity}: {message}"}
        fields["SYSLOG_IDENTIFIER"] = "ci-{tag}"
        entry = journal.one(record("done"), format="[{host}] {message}", fields=fields)
        assert entry["MESSAGE"] == b"[web1] done"
        assert entry["BUILD_HOST"] == b"web1"
        assert entry["LINE"] == b"build/warning: done"
        assert entry["SYSLOG_IDENTIFIER"] == b"ci-build"

    def test_unknown_metadata_is_left_out(self, journal: Journal) -> None:
        """Host, pid and msgid given as '-' send no field; an unknown tag reads 'logfan'."""
        entry = journal.one(Record("plain", STAMP))
        assert entry["MESSAGE"] == b"plain"
        assert entry["SYSLOG_IDENTIFIER"] == b"logfan"
        assert entry["PRIORITY"] == b"6"
        assert not {"SYSLOG_PID", "LOGFAN_HOST", "LOGFAN_MSGID"} & set(entry)

    def test_large_message_is_stored_whole(self, journal: Journal) -> None:
        """6 MiB, too large for one datagram (libsystemd passes it in a memfd), arrives whole."""
        text = "".join(f"{i:07d} " for i in range(768 * 1024))
        entry = journal.one(record(text))
        assert entry["MESSAGE"] == text.encode()

    def test_journald_absent_is_retryable(self, journal: Journal) -> None:
        """No socket: libsystemd would drop entries silently; the sink raises a retryable error."""
        journal.run([[record()]], journald="absent")
        assert journal.error == [
            "RetryableSinkError",
            "sink 'jd': journald is not running (/run/systemd/journal/socket does not exist)",
        ]

    def test_stale_socket_is_retryable(self, journal: Journal) -> None:
        """A socket file nobody reads (journald killed): the send error is a retryable error."""
        journal.run([[record()]], journald="stale")
        assert journal.error is not None
        assert journal.error[0] == "RetryableSinkError"
        assert journal.error[1].startswith(
            "sink 'jd': cannot send to journald at /run/systemd/journal/socket: "
        )
        assert "Connection refused" in journal.error[1]

    @pytest.mark.parametrize(
        ("options", "reason"),
        [
            ({"fields": {"build": "x"}}, "'build' is not a journal field name"),
            ({"fields": {"_PID": "1"}}, "'_PID' is not a journal field name"),
            ({"fields": {"1ST": "x"}}, "'1ST' is not a journal field name"),
            ({"fields": {"A" * 65: "x"}}, "is not a journal field name"),
            ({"fields": {"BÜILD": "x"}}, "'BÜILD' is not a journal field name"),
            ({"fields": {"MESSAGE": "x"}}, "MESSAGE cannot be set here: it comes from 'format'"),
            ({"fields": {"PRIORITY": "1"}}, "PRIORITY cannot be set here"),
            ({"fields": {"N": 3}}, "N: expected a template string, got 3"),
            ({"fields": {"N": "{message.__class__}"}}, "N: unknown placeholder"),
            ({"fields": ["A"]}, "expected a mapping of NAME: template, got ['A']"),
            ({"format": "{nope}"}, "unknown placeholder {nope}"),
            ({"control_chars": "drop"}, "expected one of escape, strip, keep; got 'drop'"),
        ],
    )
    def test_bad_options_name_the_option(self, options: dict[str, Any], reason: str) -> None:
        """Each bad option is refused when the sink is built, naming it and quoting the value."""
        with pytest.raises(SinkConfigError) as caught:
            sink(**options)
        assert caught.value.key == next(iter(options))
        assert reason in caught.value.reason

    def test_longest_field_name_is_accepted(self) -> None:
        """64 characters is journald's limit, and names may hold digits and underscores."""
        assert set(sink(fields={"A" * 64: "x", "B_2": "{pid}"}).fields) == {"A" * 64, "B_2"}

    def test_unknown_option(self) -> None:
        """An option the sink does not know is refused with the list of valid ones."""
        with pytest.raises(SinkConfigError) as caught:
            sink(facility="user")
        assert caught.value.key == "facility"
        assert "valid options are: control_chars, fields, format" in caught.value.reason

    def test_logfan_check_points_at_the_option(self, tmp_path: Path) -> None:
        """`logfan check` reports a bad field name with file, line and key path."""
        config = tmp_path / "logfan.yaml"
        config.write_text(
            f"broker:\n  url: filesystem://{tmp_path}/spool\n"
            "sinks:\n  jd:\n    type: journald\n    fields:\n      build: '{tag}'\n"
        )
        done = subprocess.run(
            [sys.executable, "-m", "logfan.daemon.cli", "check", "-c", str(config)],
            capture_output=True,
            check=False,
        )
        assert done.returncode == 1
        assert done.stderr.decode().startswith(
            f"logfan check: {config}:6: sinks.jd.fields: 'build' is not a journal field name"
        )

    def test_without_systemd_python(self) -> None:
        """Without systemd-python, building the sink says how to install it."""
        code = (
            "import sys\n"
            "sys.modules['systemd'] = None\n"  # blocks `import systemd...` as if not installed
            "from logfan.sinks.base import Options, SinkConfigError\n"
            "from logfan.sinks.journald import JournaldSink\n"
            "try:\n"
            "    JournaldSink('jd', Options('jd', {'type': 'journald'}))\n"
            "except SinkConfigError as exc:\n"
            "    print(exc.key, exc)\n"
        )
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True)
        assert done.stdout.decode() == (
            "type sink 'jd', option 'type': the journald sink needs systemd-python: install "
            "logfan[systemd] (pip install 'logfan[systemd]'; building it needs libsystemd-dev "
            "and pkg-config)\n"
        )

    def test_registered_as_journald(self) -> None:
        """`type: journald` finds this class through the logfan.sinks entry points."""
        assert entry_points(group="logfan.sinks")["journald"].load() is JournaldSink


class TestDaemonLogsToJournal:
    """The daemon's own logs under systemd: journald entries with fields, passwords hidden."""

    def test_log_events_become_entries_with_fields(self, journal: Journal) -> None:
        """Each event is one entry: readable MESSAGE, PRIORITY, LOGFAN_* fields, no password."""
        journal.log(
            [
                {
                    "event": "consumer disconnected",
                    "fields": {
                        "sink": "remote",
                        "error": "amqp://guest:hunter2@h:5672// gone",
                        "sinks": ["a", "b"],
                    },
                }
            ]
        )
        assert journal.error is None
        (entry,) = [e for e in journal.entries() if e.get("SYSLOG_IDENTIFIER") == b"logfan"]
        assert entry["PRIORITY"] == b"4"
        assert entry["LOGFAN_SINK"] == b"remote"
        assert entry["LOGFAN_EVENT"] == b"consumer disconnected"
        assert entry["MESSAGE"] == (
            b"consumer disconnected sink=remote error=amqp://guest:***@h:5672// gone "
            b'sinks=["a", "b"]'
        )
        assert b"hunter2" not in b"".join(entry.values())
        assert entry["LOGFAN_ERROR"] == b"amqp://guest:***@h:5672// gone"
        assert entry["LOGFAN_SINKS"] == b'["a", "b"]'
        assert (entry["CODE_FILE"], entry["CODE_FUNC"]) == (b"<string>", b"<module>"), (
            "the code that logged (here the test's runner script), not the log handler"
        )


class TestHostileInput:
    """Hostile lines as the daemon hands them to the sink: one entry each, as the policy says.

    The records come through the daemon's own code (issue 7): the emitter's ``LineReader`` over a
    real pipe (CRLF taken as LF, invalid UTF-8 as ``\\xNN``, a 1 MiB and a 100 MiB line streamed
    in 1 MiB writes and cut to 64 KiB), its envelope ``encode`` and the consumer's ``decode``; a
    foreign publisher's plain bodies (U+FFFD) and an envelope whose messages hold LF and CRLF;
    then the consumer's per-sink cut, ``truncate_text`` to ``max_line_bytes`` (64 KiB, as
    ``SinkConsumer._truncate`` does). The end-to-end run of the other sinks is
    ``tests/e2e/test_hostile_input.py``. ``keep`` (the default) stores the bytes as they are: a
    message with LF is one entry all the same; ``escape`` and ``strip`` behave as in the file sink.
    """

    LIMIT = 64 * 1024
    MIB = 1 << 20
    MARKER = r"(.*)\.\.\.\[truncated (\d+) bytes\]"
    STDIN = (
        b"J01 innocent\rFORGED root login\n"
        b"J02 ends in CRLF\r\n"
        b"J03 \x1b[2J\x1b[31mred\x1b[0m \x1b]0;title\x07\n"
        b"J04 nul\x00byte del\x7f tab\tend\n"
        b"J05 bad \xff\xfe \xc3( end\n"
    )
    #: what each line's message must be, before the policy; a big one: (head, fill, bytes).
    SMALL: tuple[tuple[str, str], ...] = (
        ("J01", "J01 innocent\rFORGED root login"),
        ("J02", "J02 ends in CRLF"),
        ("J03", "J03 \x1b[2J\x1b[31mred\x1b[0m \x1b]0;title\x07"),
        ("J04", "J04 nul\x00byte del\x7f tab\tend"),
        ("J05", "J05 bad \\xff\\xfe \\xc3( end"),
        ("J08", "J08 after the big ones"),
        ("R01", "R01 bad \ufffd\ufffd \ufffd( end"),
        ("R02", "R02 first\nFORGED root login"),
        ("R03", "R03 CRLF inside\r\nsecond half\x00"),
        ("R05", "R05 the last line"),
    )
    BIG: tuple[tuple[str, str, str, int], ...] = (
        ("J06", "J06 x", "é", 5 + 2 * (MIB // 2)),
        ("J07", "J07 ", "y", 100 * MIB),
        ("R04", "R04 x", "日", 5 + 3 * (MIB // 3)),
    )

    @staticmethod
    def escape(text: str) -> str:
        named = {"\t": "\t", "\n": "\\n", "\r": "\\r"}
        return "".join(
            named.get(c, f"\\x{ord(c):02x}") if ord(c) < 0x20 or ord(c) == 0x7F else c for c in text
        )

    @staticmethod
    def strip(text: str) -> str:
        return "".join(c for c in text if c == "\t" or not (ord(c) < 0x20 or ord(c) == 0x7F))

    @classmethod
    def pieces(cls, head: str, fill: str, size: int) -> list[bytes]:
        """A big line in pieces of about 1 MiB (one piece of ``fill`` repeated, reused)."""
        unit = fill.encode()
        rest = size - len(head.encode())
        assert rest % len(unit) == 0
        chunk = unit * (cls.MIB // len(unit))
        return [
            head.encode(),
            *[chunk] * (rest // len(chunk)),
            unit * (rest % len(chunk) // len(unit)),
        ]

    def records(self) -> tuple[list[Record], int, int]:
        """The records a journald sink receives; the emitter's and the consumer's cut counts."""
        import threading
        from collections.abc import Sequence

        from logfan.daemon.emit.reader import LineReader
        from logfan.daemon.envelope import CONTENT_TYPE, decode, encode
        from logfan.sinks.truncation import truncate_text

        read, write = os.pipe()

        def feed() -> None:
            with os.fdopen(write, "wb") as stdin:
                stdin.write(self.STDIN)
                for _, head, fill, size in self.BIG[:2]:
                    for piece in self.pieces(head, fill, size):
                        stdin.write(piece)
                    stdin.write(b"\n")
                stdin.write(b"J08 after the big ones\n")

        writer = threading.Thread(target=feed)
        writer.start()
        reader = LineReader(read)
        lines = [line for batch in reader.envelopes() for line in batch]
        writer.join()
        os.close(read)

        def envelope(pairs: Sequence[tuple[str, str]], tag: str) -> list[Record]:
            body = encode(pairs, msg_id="h", host="web1", tag=tag, pid=4242, severity="info")
            return decode(body, CONTENT_TYPE, {"content_type": CONTENT_TYPE})

        records = envelope(lines, "hostile")
        records += decode(b"R01 bad \xff\xfe \xc3( end", "text/plain", {"app_id": "foreign"})
        records += envelope([(STAMP, m) for k, m in self.SMALL if k in ("R02", "R03")], "foreign")
        records += decode(b"".join(self.pieces(*self.BIG[2][1:])), None, {})
        records += decode(b"R05 the last line", None, {})
        cut = 0
        for i, rec in enumerate(records):  # the consumer's per-sink max_line_bytes
            text, n = truncate_text(rec.message, self.LIMIT)
            if n:
                records[i] = rec._replace(message=text)
                cut += 1
        return records, reader.truncated, cut

    def check_big(self, where: str, got: bytes, head: str, fill: str, size: int) -> str | None:
        """Why ``got`` is not the big line cut to 64 KiB with a true marker (or None)."""
        import re

        match = re.fullmatch(self.MARKER, got.decode(), re.DOTALL)
        if match is None:
            return f"{where}: no marker at the end: {got[-60:]!r}"
        kept, n = match[1], int(match[2])
        size_kept = len(kept.encode())
        if size_kept + n != size:
            return (
                f"{where}: the marker says {n} bytes were cut, but {size - size_kept} of its "
                f"{size} bytes are missing (kept {size_kept}; end: {got.decode()[-40:]!r})"
            )
        if not kept.startswith(head) or kept[len(head) :].strip(fill):
            return f"{where}: what is kept is not the line's start: {kept[-60:]!r}"
        if not self.LIMIT - 64 < size_kept <= self.LIMIT:
            return f"{where}: kept {size_kept} bytes for a limit of {self.LIMIT}"
        return None

    def test_hostile_lines_one_entry_each_per_policy(self, journal: Journal) -> None:
        """keep, escape, strip: exact MESSAGE, one entry per line, big lines cut with a true N."""
        records, emitter_cut, consumer_cut = self.records()
        keys = [r.message.split(" ", 1)[0] for r in records]
        order = ["J01", "J02", "J03", "J04", "J05", "J06", "J07", "J08"]
        assert keys == [*order, "R01", "R02", "R03", "R04", "R05"]
        problems: list[str] = []
        print(f"emitter cut {emitter_cut} line(s); the consumer cut {consumer_cut} (expected 1)")
        if emitter_cut != 2:
            problems.append(f"the emitter's LineReader counted {emitter_cut} cut lines, want 2")
        if consumer_cut != 1:
            problems.append(
                f"max_line_bytes cut {consumer_cut} lines again, want 1 (the foreign publisher's"
                " 1 MiB line): a line the emitter already cut must arrive within the limit"
            )
        small = dict(self.SMALL)
        big = {key: (head, fill, size) for key, head, fill, size in self.BIG}
        policies = {"keep": lambda t: t, "escape": self.escape, "strip": self.strip}
        for policy, render in policies.items():
            own = Journal(journal.work / policy)  # a fresh journal per policy
            own.work.mkdir()
            own.run([records], control_chars=policy)
            assert own.error is None, own.error
            messages = [e["MESSAGE"] for e in own.entries()]
            got_keys = [m.split(b" ", 1)[0].decode() for m in messages]
            print(f"journald {policy}: sent={len(records)} entries={len(messages)}")
            if got_keys != keys:
                problems.append(f"journald {policy}: entries {got_keys}, want {keys}")
                continue
            for key, message in zip(keys, messages, strict=True):
                if key in small and message != render(small[key]).encode():
                    problems.append(f"journald {policy}: {key}: {message!r}")
                elif key in big:
                    problem = self.check_big(f"journald {policy}: {key}", message, *big[key])
                    if problem:
                        problems.append(problem)
        assert not problems, "\n".join(problems)
