"""`logfan reload`: have the running daemon reload its config, and say what it made of it.

``systemctl reload`` runs it (``ExecReload=``): it signals the daemon (SIGHUP) and waits until
the daemon's status file records the outcome of that reload. A refused config is an error with
the daemon's reason, so ``systemctl reload`` fails and ``systemctl status`` shows why; success
comes only once every sink reopened its files.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from logfan.daemon.config.loader import DaemonConfig, load_config
from logfan.daemon.config.yamlsource import load_yaml
from logfan.daemon.errors import ConfigError, LogfanError
from logfan.daemon.ops.status import read_status_file

#: how often the status file is read while waiting.
POLL = 0.05


def _last(status_file: str) -> tuple[int | None, int]:
    """The running daemon's pid and the number of its last reload (0: none yet)."""
    doc = read_status_file(status_file)
    if doc is None:
        return None, 0
    reload: Any = doc.get("reload") or {}
    pid = doc.get("pid")
    return (pid if isinstance(pid, int) else None), int(reload.get("seq") or 0)


def status_file_of(path: str) -> str:
    """Where the daemon of the config at ``path`` keeps its status, even if the config is one
    the daemon would refuse (its verdict is what `logfan reload` reports)."""
    try:
        return load_config(path).daemon.status_file
    except ConfigError:
        pass
    try:
        value: Any = load_yaml(path).value
    except ConfigError:
        value = None
    daemon = value.get("daemon") if isinstance(value, dict) else None
    given = daemon.get("status_file") if isinstance(daemon, dict) else None
    return os.path.abspath(given) if isinstance(given, str) and given else DaemonConfig.status_file


def reload_daemon(status_file: str, pid: int | None = None, timeout: float = 60.0) -> str:
    """Signal the daemon and wait for its verdict: a sentence on success, LogfanError if not."""
    found, before = _last(status_file)
    pid = pid or found
    if pid is None:
        raise LogfanError(f"no running daemon: no fresh status file {status_file}")
    try:
        os.kill(pid, signal.SIGHUP)
    except OSError as exc:
        raise LogfanError(f"cannot signal the daemon (pid {pid}): {exc.strerror}") from None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        doc = read_status_file(status_file)
        outcome: Any = (doc or {}).get("reload") or {}
        if int(outcome.get("seq") or 0) > before:
            if not outcome.get("ok"):
                raise LogfanError(f"reload refused; the running config stays: {outcome['error']}")
            pending = outcome.get("pending") or []
            if pending:
                return f"reloaded; not yet reopened: {', '.join(pending)}"
            return "reloaded"
        time.sleep(POLL)
    raise LogfanError(f"the daemon (pid {pid}) did not say within {timeout:g} s how it reloaded")
