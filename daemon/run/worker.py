"""A sink's worker: its consumer in a process of its own, so sinks use every core and never stall
each other.

Python runs one thread at a time per process: with every sink's consumer in one process, three
sinks would share one core however many the machine has. Each worker (``logfan:NAME`` in
``ps -o comm``, ``top``) is forked from the supervisor: it starts at once and shares the
supervisor's loaded modules copy-on-write (a fork server would add two processes: about 30 MB
more PSS at idle, measured). The fork happens in the supervisor's main thread; its only other
threads are the config watcher's, whose state a worker never touches, and Python's logging
re-creates its locks in the child. A worker closes every supervisor pipe end it inherited, its
own included, so the end of its pipe tells it that the supervisor is gone.

The supervisor talks to a worker over a pipe, sending a :class:`Command`: ``figures`` (the
worker answers with a snapshot of its figures), ``reopen`` (after SIGHUP) and ``stop``. A worker
stops gracefully (the batch in hand is written and acknowledged) on ``stop``, on SIGTERM or
SIGINT (systemd and a terminal signal the whole group), and when the supervisor is gone (the
pipe's end, and the kernel's parent-death signal), so a ``kill -9`` of the supervisor leaves no
worker behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import multiprocessing
import os
import signal
import time
from enum import StrEnum
from multiprocessing.connection import Connection
from types import FrameType
from typing import Any

import structlog

from logfan.daemon.config.loader import BrokerConfig
from logfan.daemon.config.sink import SinkConfig, build_sink
from logfan.daemon.consume.consumer import SinkConsumer
from logfan.daemon.consume.figures import SinkFigures
from logfan.daemon.run import logs

__all__ = ["Command", "SinkWorker", "WorkerFigures"]

#: the worker's main thread checks its pipe and its consumer this often.
POLL = 0.2
_PR_SET_NAME = 15
_PR_SET_PDEATHSIG = 1
#: environment only the supervisor may act on (NotifyAccess=main would refuse a worker anyway).
_SUPERVISOR_ONLY = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")
#: signals a new worker must not take with the supervisor's handlers.
_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}


class Command(StrEnum):
    """What the supervisor asks of a worker over its pipe."""

    #: send a snapshot of the figures (one is asked for at a time).
    FIGURES = "figures"
    #: have the sink reopen its files (after SIGHUP).
    REOPEN = "reopen"
    #: write and acknowledge what is held, then exit.
    STOP = "stop"


class WorkerFigures(SinkFigures):
    """A worker's figures as last reported, plus what only the worker process knows."""

    def __init__(self) -> None:
        super().__init__()
        #: messages the worker holds unacknowledged.
        self.held = 0
        #: lines the sink itself shortened (a syslog message over ``max_message_bytes``).
        self.sink_truncated = 0


class _Stop:
    """A stop asked for by a signal. The handler only sets a flag: a lock taken in a signal
    handler (``threading.Event.set``) deadlocks when a second signal arrives while the first
    handler holds it, as the kernel's parent-death SIGTERM and systemd's SIGTERM can."""

    requested = False

    def request(self, _signum: int, _frame: FrameType | None) -> None:
        self.requested = True


def _snapshot(consumer: SinkConsumer) -> dict[str, Any]:
    figures = dict(vars(consumer.figures))
    figures["held"] = len(consumer.held())
    figures["sink_truncated"] = int(getattr(consumer.sink, "truncated", 0) or 0)
    return figures


def _prctl(option: int, arg: int | bytes) -> None:
    with contextlib.suppress(Exception):  # Linux only; a nicety elsewhere
        ctypes.CDLL(None, use_errno=True).prctl(option, arg, 0, 0, 0)


def _worker_main(
    conn: Connection,
    broker_config: BrokerConfig,
    sink_config: SinkConfig,
    log_options: dict[str, Any],
) -> None:
    """The worker process: run the sink's consumer until told (or signalled) to stop."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    _prctl(_PR_SET_NAME, f"logfan:{sink_config.name}"[:15].encode())
    for name in _SUPERVISOR_ONLY:
        os.environ.pop(name, None)
    signal.set_wakeup_fd(-1)  # the supervisor's wake-up pipe is not this process's
    stop = _Stop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop.request)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the supervisor says when to reopen
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)  # held since the fork
    logs.configure(**log_options)
    try:
        sink = build_sink(sink_config)
    except Exception as exc:  # noqa: BLE001 - said in the log; the supervisor retries later
        log = structlog.get_logger("logfan.worker").bind(sink=sink_config.name)
        log.error("cannot set up the sink", error=str(exc), error_type=type(exc).__name__)
        os._exit(2)
    consumer = SinkConsumer(broker_config, sink_config, sink)
    consumer.start()
    orphaned = _serve(conn, consumer, stop)
    if not orphaned:
        with contextlib.suppress(OSError):
            conn.send(_snapshot(consumer))
    # A consumer thread that ended without being asked to (a plugin raised SystemExit) is a
    # crash: the supervisor sees the exit code and starts the worker again.
    os._exit(0 if consumer.stopping else 1)


def _serve(conn: Connection, consumer: SinkConsumer, stop: _Stop) -> bool:
    """Answer the supervisor until the consumer thread ends; True if the supervisor is gone."""
    orphaned = False
    while consumer.is_alive():
        if stop.requested:
            consumer.stop()
        if orphaned:
            consumer.join(POLL)
            continue
        try:
            if not conn.poll(POLL):
                continue
            command = conn.recv()
            if command == Command.FIGURES:
                conn.send(_snapshot(consumer))
        except (EOFError, OSError):  # the supervisor is gone: finish the batch in hand, exit
            orphaned = True
            stop.requested = True
            continue
        if command == Command.REOPEN:
            consumer.request_reopen()
        elif command == Command.STOP:
            consumer.stop()
    return orphaned


#: every worker's pipe end held by the supervisor: a new worker closes them all (it is a fork).
_SUPERVISOR_ENDS: set[Connection] = set()
#: other descriptors only the supervisor may hold (the spool's daemon lock): a worker closes them.
SUPERVISOR_FDS: set[int] = set()


def _forked(
    conn: Connection,
    broker_config: BrokerConfig,
    sink_config: SinkConfig,
    log_options: dict[str, Any],
) -> None:
    for end in list(_SUPERVISOR_ENDS):
        with contextlib.suppress(OSError):
            end.close()
    _SUPERVISOR_ENDS.clear()
    for fd in SUPERVISOR_FDS:
        with contextlib.suppress(OSError):
            os.close(fd)
    _worker_main(conn, broker_config, sink_config, log_options)


class SinkWorker:
    """The supervisor's handle on one worker process (what it needs of a consumer thread)."""

    def __init__(
        self, broker_config: BrokerConfig, sink_config: SinkConfig, log_options: dict[str, Any]
    ) -> None:
        self.broker_config = broker_config
        self.sink_config = sink_config
        self.log_options = log_options
        self.figures = WorkerFigures()
        self.started_at = time.monotonic()
        #: since when (wall clock) the supervisor has seen no progress of this worker; None: it
        #: is not wedged.
        self.wedged_since: float | None = None
        self._stopping = False
        self._asked = False
        self._conn: Connection | None = None
        self._process: Any = None

    @property
    def stopping(self) -> bool:
        """True once stop() was called."""
        return self._stopping

    def start(self) -> None:
        """Start the worker process; raises OSError if the pipe or the fork is refused."""
        context = multiprocessing.get_context("fork")
        conn, child = context.Pipe()
        process = context.Process(
            target=_forked,
            args=(child, self.broker_config, self.sink_config, self.log_options),
            name=f"logfan-sink-{self.sink_config.name}",
        )
        # The new worker closes this end of its own pipe, and the other workers' ends, in itself:
        # then only the supervisor holds it, and its death is the end of the pipe.
        _SUPERVISOR_ENDS.add(conn)
        # Frozen objects are left alone by the worker's garbage collector, so the pages of the
        # supervisor's modules and objects stay shared instead of being copied on its first run.
        # Stop signals are held until the worker has its own handlers (it unblocks them).
        signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        gc.freeze()
        try:
            process.start()
        except BaseException:
            _SUPERVISOR_ENDS.discard(conn)
            conn.close()
            raise
        finally:
            gc.unfreeze()
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
            child.close()  # the worker's end: only the worker holds it now
        self._conn, self._process = conn, process

    @property
    def pid(self) -> int | None:
        """The worker process' id (None before it started)."""
        return None if self._process is None else int(self._process.pid)

    def is_alive(self) -> bool:
        """Whether the worker process is running."""
        return self._process is not None and bool(self._process.is_alive())

    @property
    def exit_code(self) -> int | None:
        """How the worker ended (negative: the signal that killed it); None while it runs."""
        return None if self._process is None else self._process.exitcode

    def _send(self, command: Command) -> None:
        if self._conn is None:
            return
        with contextlib.suppress(OSError, ValueError):  # the worker is gone: nothing to tell
            self._conn.send(command)

    def refresh(self) -> None:
        """Take the snapshots the worker sent, and ask for the next one (one at a time)."""
        if self._conn is None:
            return
        try:
            while self._conn.poll():
                figures = self._conn.recv()
                self._asked = False
                for key, value in figures.items():
                    setattr(self.figures, key, value)
        except (EOFError, OSError, ValueError):
            pass
        if not self._asked and not self._stopping and self.is_alive():
            self._asked = True
            self._send(Command.FIGURES)

    def request_reopen(self) -> None:
        """Have the sink reopen its files (after SIGHUP)."""
        self._send(Command.REOPEN)

    def stop(self) -> None:
        """Ask the worker to write what it holds, acknowledge it and exit."""
        self._stopping = True
        self._send(Command.STOP)

    def join(self, timeout: float | None = None) -> None:
        """Wait for the worker to exit; take its last figures."""
        if self._process is not None:
            self._process.join(timeout)
            self.refresh()

    def kill(self) -> None:
        """End a worker that did not stop in time (its unacknowledged lines stay queued)."""
        if self._process is not None:
            self._process.kill()
            self._process.join(5)

    def close(self) -> None:
        """Let go of the pipe and the process handle."""
        if self._conn is not None:
            _SUPERVISOR_ENDS.discard(self._conn)
            self._conn.close()
        if self._process is not None:
            with contextlib.suppress(ValueError):
                self._process.close()
