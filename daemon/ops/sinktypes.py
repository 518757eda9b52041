"""`logfan sinks`: the installed sink types, who provides them, and the options each takes.

A type's options are found the way ``logfan check`` finds them: its constructor is run on an
empty mapping with an ``Options`` that notes every getter it calls (key, kind, default) and
hands a stand-in value to the required ones. So the list is what the constructor reads, never
a copy that could drift; the one line of help per option comes from the class's
``OPTION_HELP`` mapping, where it has one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import EntryPoint
from typing import Any

from logfan.daemon.config.registry import installed_sink_types, load_sink_class
from logfan.daemon.config.sink import FLUSH_INTERVAL
from logfan.daemon.ops.status import render_table
from logfan.sinks.options import REQUIRED, Options, SinkConfigError
from logfan.sinks.truncation import MAX_LINE_BYTES

#: the keys the daemon reads itself, accepted by every sink type, with their defaults.
COMMON = (
    ("max_retries", "5"),
    ("max_queue", "unbounded"),
    ("max_line_bytes", str(MAX_LINE_BYTES)),
    ("flush_interval", f"{FLUSH_INTERVAL:g}"),
    ("queue_type", "broker.queue_type"),
    ("scope", "shared"),
    ("select", "every line"),
)


@dataclass(frozen=True)
class OptionDoc:
    """One option of a sink type, as its constructor reads it."""

    key: str
    kind: str
    default: str
    help: str


class _Describing(Options):
    """Options that note every getter call, with stand-ins for the required values."""

    def __init__(self, sink: str) -> None:
        super().__init__(sink, {})
        self.noted: dict[str, tuple[str, Any]] = {}
        #: required options given a stand-in value (a sink may refuse it once it checks it)
        self.stood_in: set[str] = set()
        self._stand_in: Any = None

    def _note(self, key: str, kind: str, default: Any, choices: Sequence[str] = ()) -> None:
        self.noted.setdefault(key, (kind, default))
        stand_ins = {"text": "x", "true or false": False, "size (100MiB, 1GB)": 1}
        self._stand_in = choices[0] if choices else stand_ins.get(kind, 1)

    def _take(self, key: str, default: Any) -> Any:
        self._known.add(key)
        if default is REQUIRED:
            self.stood_in.add(key)
            return self._stand_in
        return default


def _shown(default: Any) -> str:
    if default is REQUIRED:
        return "required"
    if default is None:
        return "-"
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, int) and default in (0o600, 0o640, 0o644):
        return f"0{default:o}"
    return str(default)


def describe(type_name: str) -> list[OptionDoc]:
    """The options of ``type_name``, in the order its constructor reads them.

    Raises LookupError for an unknown or broken type, SinkConfigError if its constructor
    cannot run here (a missing optional dependency: journald without systemd-python).
    """
    cls = load_sink_class(type_name)
    options = _Describing(type_name)
    try:
        cls(type_name, options)
    except SinkConfigError as exc:
        if exc.key not in options.stood_in:  # not our stand-in refused: a real problem
            raise
    helps: dict[str, str] = dict(getattr(cls, "OPTION_HELP", {}))
    return [
        OptionDoc(key, kind, _shown(default), helps.get(key, "-"))
        for key, (kind, default) in options.noted.items()
    ]


def provider(entry: EntryPoint) -> str:
    """``name version`` of the distribution that registers ``entry``."""
    dist = entry.dist
    return f"{dist.name} {dist.version}" if dist is not None else "?"


def list_types() -> str:
    """One row per installed sink type: its provider and its options."""
    rows = []
    for name, entry in sorted(installed_sink_types().items()):
        try:
            keys = ", ".join(doc.key for doc in describe(name))
        except Exception as exc:  # noqa: BLE001 - a type that cannot be described says why
            keys = f"(cannot list: {exc})"
        rows.append([name, provider(entry), keys])
    return render_table(["TYPE", "PROVIDED BY", "OPTIONS"], rows)


def show_type(type_name: str) -> str:
    """The options of one type, with kinds, defaults and help; then the common ones."""
    docs = describe(type_name)  # refuses an unknown type first
    entry = installed_sink_types()[type_name]
    head = f"{type_name}: {entry.value} ({provider(entry)})"
    table = render_table(
        ["OPTION", "KIND", "DEFAULT", "HELP"], [[d.key, d.kind, d.default, d.help] for d in docs]
    )
    common = ", ".join(f"{key} ({default})" for key, default in COMMON)
    return f"{head}\n{table}\nevery sink type also takes: {common}"
