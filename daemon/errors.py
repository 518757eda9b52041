"""The few errors logfan raises for a person to read; each carries its data as attributes."""

from __future__ import annotations


class LogfanError(Exception):
    """Base of errors shown to the user as one clear sentence, never as a traceback."""

    exit_status = 1


class ConfigError(LogfanError):
    """A config file is unreadable or invalid: ``path:line: key.path: reason``."""

    def __init__(self, path: str, line: int | None, key: str | None, reason: str) -> None:
        self.path = path
        self.line = line
        self.key = key
        self.reason = reason
        where = path if line is None else f"{path}:{line}"
        super().__init__(f"{where}: {key}: {reason}" if key else f"{where}: {reason}")


class BrokerError(LogfanError):
    """The broker could not be reached or refused an operation; the URL is shown redacted."""


class EmitError(LogfanError):
    """The emitter could not get every line confirmed; ``unconfirmed`` says how many."""

    def __init__(self, reason: str, unconfirmed: int) -> None:
        self.unconfirmed = unconfirmed
        super().__init__(reason)
