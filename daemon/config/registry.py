"""Sink types, found through the ``logfan.sinks`` entry-point group like any third-party plugin."""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Any

GROUP = "logfan.sinks"
#: what the daemon calls on every sink (the ``Sink`` protocol of logfan.sinks.base).
SINK_METHODS = ("open", "write", "flush", "close")


def installed_sink_types() -> dict[str, EntryPoint]:
    """Every sink type installed in this environment, by the name ``type:`` uses."""
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def load_sink_class(type_name: str) -> Any:
    """The class registered as ``type_name``; ``LookupError`` lists the installed types."""
    found = installed_sink_types()
    if type_name not in found:
        names = ", ".join(sorted(found)) or "(none)"
        raise LookupError(f"unknown sink type {type_name!r}; installed sink types are: {names}")
    try:
        cls = found[type_name].load()
    except Exception as exc:  # a broken plugin must not take the daemon down with a traceback
        raise LookupError(
            f"sink type {type_name!r} ({found[type_name].value}) failed to import: {exc}"
        ) from exc
    missing = [name for name in SINK_METHODS if not callable(getattr(cls, name, None))]
    if missing:
        raise LookupError(
            f"sink type {type_name!r} ({found[type_name].value}) lacks {', '.join(missing)}: "
            f"a sink class defines {', '.join(SINK_METHODS)} (see logfan.sinks.base)"
        )
    return cls
