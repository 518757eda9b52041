"""The supervisor: one worker process per sink; restarts, reloads, notifies systemd, stops."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import select
import signal
import time
from pathlib import Path
from types import FrameType
from typing import Any

import structlog

from logfan.daemon.broker import topology
from logfan.daemon.broker.url import parse_broker_url, redact
from logfan.daemon.config.loader import Config, load_config
from logfan.daemon.config.sink import SinkConfig
from logfan.daemon.consume.figures import SinkState
from logfan.daemon.errors import LogfanError
from logfan.daemon.ops import status
from logfan.daemon.run.configwatch import ConfigWatcher
from logfan.daemon.run.metrics import DaemonRow, MetricsServer, SinkRow
from logfan.daemon.run.notify import Notifier
from logfan.daemon.run.worker import SUPERVISOR_FDS, SinkWorker

#: how long a graceful stop may take before the daemon exits anyway (systemd's default is 90 s).
STOP_TIMEOUT = 8.0
#: how often STATUS= and the status file are refreshed.
STATUS_EVERY = 2.0
#: a consumer whose loop has not gone round for this long is wedged (no watchdog ping).
MIN_STALL = 5.0
#: config edits come in bursts (write, then close; or tmp write, then rename): wait this long.
RELOAD_SETTLE = 0.3
#: how long a reload waits for every unchanged sink to reopen its files (under the watchdog's
#: 15 s, so a wedged sink cannot get the service killed by a reload).
RELOAD_WAIT = 10.0
#: a worker that dies soon after its start is restarted after a growing delay, up to this.
RESTART_MAX = 30.0


class _Waker:
    """Wakes the main loop early, without a lock: a signal handler that takes one (as
    ``threading.Event.set`` does) deadlocks if a second signal arrives while it holds it.

    A signal wakes it through ``signal.set_wakeup_fd`` (the interpreter writes a byte at C
    level); the config watcher's thread writes a byte itself.
    """

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)

    def arm(self) -> None:
        """Have signals wake the loop (from the main thread)."""
        signal.set_wakeup_fd(self._write)

    def disarm(self) -> None:
        """Signals no longer write to the pipe."""
        signal.set_wakeup_fd(-1)

    def wake(self) -> None:
        """Wake the loop (from any thread)."""
        with contextlib.suppress(BlockingIOError):  # full: the loop is being woken anyway
            os.write(self._write, b"\0")

    def wait(self, timeout: float) -> None:
        """Return after ``timeout`` seconds or as soon as something woke the loop."""
        select.select([self._read], [], [], timeout)
        with contextlib.suppress(BlockingIOError):
            while os.read(self._read, 4096):
                pass


class Supervisor:
    """Runs the daemon: starts every sink's worker, watches them, stops them on SIGTERM/SIGINT.

    SIGHUP and edits of the config file reload it: sinks added, removed or changed are started,
    stopped or restarted; unchanged ones keep flowing (and reopen their files). A config that
    does not load is refused with an error in the log, and the running one stays.
    """

    def __init__(
        self,
        config: Config,
        notifier: Notifier | None = None,
        log_options: dict[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.notifier = notifier or Notifier()
        #: how workers set up their logs (the same as the supervisor's).
        self.log_options = log_options or {}
        self.workers: dict[str, SinkWorker] = {}
        self._restart_delay: dict[str, float] = {}
        self._restart_at: dict[str, float] = {}
        self.log = structlog.get_logger("logfan.supervisor")
        self._waker = _Waker()
        self._signal: int | None = None
        self._reload_at: float | None = None
        self._ready = False
        self._next_status = 0.0
        self._next_ping = 0.0
        self._status_file_error: str | None = None
        self._spool_fd: int | None = None
        #: the outcome of the last reload, kept in the status file for `logfan reload`.
        self.last_reload: dict[str, Any] | None = None
        self.metrics = MetricsServer()
        #: the address metrics are served on (or were refused on), and why not, if not.
        self._metrics_address: str | None = None
        self._metrics_error: str | None = None
        #: per sink: times its worker was started again, and every worker's process id.
        self._restarts: dict[str, int] = {}
        self._pids: dict[str, list[int]] = {}
        self._daemon_row = DaemonRow(started_at=time.time())

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        # A handler only records the signal (the interpreter itself wakes the loop through the
        # wake-up pipe); the main loop does the work.
        if signum == signal.SIGHUP:
            self._reload_at = time.monotonic()
        else:
            self._signal = signum

    def _config_changed(self) -> None:
        self._reload_at = time.monotonic() + RELOAD_SETTLE
        self._waker.wake()

    def _start(self, sink_config: SinkConfig) -> None:
        worker = SinkWorker(self.config.broker, sink_config, self.log_options)
        self.workers[sink_config.name] = worker
        try:
            worker.start()
        except OSError as exc:  # fork refused (TasksMax, memory): tried again like a dead worker
            worker.figures.last_error = f"cannot start a worker process: {exc}"
        if worker.pid is not None:
            self._pids.setdefault(sink_config.name, []).append(worker.pid)

    def _serve_metrics(self) -> None:
        """Serve metrics where the config says (again after a reload that changed it); a port
        that is taken is said once in the log and in the status, and delivery goes on."""
        wanted = self.config.daemon.metrics
        if wanted == self._metrics_address and (self.metrics.serving or wanted is None):
            return
        self.metrics.stop()
        self._metrics_address, self._metrics_error = wanted, None
        address = self.config.daemon.metrics_address
        if address is None:
            return
        try:
            url = self.metrics.serve(address)
        except OSError as exc:
            self._metrics_error = f"cannot serve metrics on {wanted}: {exc.strerror or exc}"
            self.log.error(
                "metrics unavailable; lines are delivered as ever",
                address=wanted,
                error=exc.strerror or str(exc),
            )
            return
        self.log.info("serving metrics", url=url)

    def _update_metrics(self) -> None:
        rows = []
        for name, worker in self.workers.items():
            figures = worker.figures
            rows.append(
                SinkRow(
                    name=name,
                    type=worker.sink_config.type,
                    state=status.state_of(worker),
                    backlog=figures.backlog,
                    held=figures.held,
                    written_at=figures.written_at,
                    restarts=self._restarts.get(name, 0),
                )
            )
        self.metrics.update(rows, self._daemon_row)

    def _hold_spool(self) -> None:
        """On the embedded broker, take its spool (one daemon per spool) or refuse to start."""
        parsed = parse_broker_url(self.config.broker.url)
        if not parsed.embedded or self._spool_fd is not None:
            return
        from logfan.daemon.broker.spool.access import hold  # noqa: PLC0415 - embedded only

        try:
            self._spool_fd = hold(Path(str(parsed.spool)))
        except BlockingIOError as exc:
            raise LogfanError(str(exc.strerror)) from None
        except OSError as exc:
            raise LogfanError(f"cannot use the spool {parsed.spool}: {exc}") from None
        SUPERVISOR_FDS.add(self._spool_fd)

    def run(self, pending_signal: int | None = None) -> int:
        """Serve until SIGTERM or SIGINT (or ``pending_signal``, one that came during start-up)."""
        self._hold_spool()
        self.metrics.prepare()  # before any worker forks: each one counts into its folder
        self._signal = pending_signal
        self._waker.arm()
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._handle)
        self.log.info(
            "logfan starting",
            config=self.config.path,
            broker=redact(self.config.broker.url),
            exchange=self.config.broker.exchange,
            sinks=[s.name for s in self.config.sinks],
        )
        self._serve_metrics()
        watcher = ConfigWatcher(self.config.path, self._config_changed)
        watcher.start()
        try:
            for sink_config in self.config.sinks:
                self._start(sink_config)
            while self._signal is None:
                idle = 1.0 if self.notifier.watchdog_interval is None else 0.5
                self._waker.wait(idle if self._ready else 0.1)
                self._tick()
        except BaseException:
            # A bug of ours: the workers must not outlive the supervisor (nor keep it waiting).
            self.log.exception("supervisor failed; stopping the sink workers")
            with contextlib.suppress(BaseException):
                self.stop()
            raise
        finally:
            watcher.stop()
            self._waker.disarm()
        self.log.info("logfan stopping", signal=signal.Signals(self._signal).name)
        self.notifier.stopping()
        return self.stop()

    def _tick(self) -> None:
        now = time.monotonic()
        if self._reload_at is not None and now >= self._reload_at and self._signal is None:
            self._reload_at = None
            self.reload()
        for worker in self.workers.values():
            worker.refresh()
        if self._signal is None:  # stopping: a worker that exited is not restarted
            self._restart_dead()
        if not self._ready and all(
            w.figures.state != SinkState.STARTING for w in self.workers.values()
        ):
            self._ready = True
            self.notifier.ready(status.status_line(self.workers))
            self.log.info("logfan ready", status=status.status_line(self.workers))
        if not self._ready:
            self._update_metrics()
            return  # READY=1 comes first; STATUS= and WATCHDOG=1 follow it
        # Wedged or not, as of the figures just taken: STATUS=, the status file and the
        # metrics never show a wedge next to figures that already ended it.
        interval = self.notifier.watchdog_interval
        wedged = self._mark_wedged(self.wedged(max(interval or 0.0, MIN_STALL)))
        self._update_metrics()
        if now >= self._next_status:
            self._next_status = now + STATUS_EVERY
            self.notifier.status(status.status_line(self.workers))
            self._write_status_file()
        if interval is not None and now >= self._next_ping and not wedged:
            self.notifier.watchdog()
            self._next_ping = now + interval

    def _mark_wedged(self, names: list[str]) -> list[str]:
        """Note since when each of ``names`` is wedged (shown by status), logging each episode
        once as it starts and once as it ends; returns ``names``."""
        started = [n for n in names if self.workers[n].wedged_since is None]
        ended = [n for n, w in self.workers.items() if w.wedged_since and n not in names]
        for name in started:
            self.workers[name].wedged_since = time.time()
        for name in ended:
            self.workers[name].wedged_since = None
        if started:
            watchdog = "; no watchdog ping" if self.notifier.watchdog_interval else ""
            self.log.error(f"consumer wedged{watchdog}", sinks=started)
        if ended:
            self.log.info("consumer no longer wedged", sinks=ended)
        return names

    def wedged(self, limit: float) -> list[str]:
        """Sinks whose worker is dead or whose loop has not gone round for ``limit`` seconds.

        A worker waiting out its restart delay is not wedged: the supervisor restarts it itself.
        """
        now = time.monotonic()
        return [
            name
            for name, w in self.workers.items()
            if name not in self._restart_at
            and (not w.is_alive() or now - w.figures.tick_at > limit)
        ]

    def _write_status_file(self) -> None:
        path = self.config.daemon.status_file
        try:
            status.write_status_file(
                path,
                self.workers,
                self.last_reload,
                metrics={"url": self.metrics.url, "error": self._metrics_error},
            )
            self._status_file_error = None
        except OSError as exc:
            if self._status_file_error is None:  # say it once, not every 2 s
                self.log.warning("cannot write the status file", path=path, error=str(exc))
            self._status_file_error = str(exc)

    def _restart_dead(self) -> None:
        now = time.monotonic()
        for sink_config in self.config.sinks:
            name = sink_config.name
            worker = self.workers[name]
            if worker.is_alive() or worker.stopping:
                continue
            worker.figures.state = SinkState.RESTARTING
            if name not in self._restart_at:
                # A worker that ran a while is restarted at once; one that keeps dying right
                # after its start, after a delay that doubles each time (a crash loop).
                quick = now - worker.started_at < 60
                delay = min(RESTART_MAX, self._restart_delay.get(name, 0.5) * 2) if quick else 0
                self._restart_delay[name] = max(delay, 0.5)
                self._restart_at[name] = now + delay
                self.log.error(
                    "sink worker died; restarting it",
                    sink=name,
                    exit_code=worker.exit_code,
                    restart_in=round(delay, 1),
                    last_error=worker.figures.last_error,
                )
            if now >= self._restart_at[name]:
                del self._restart_at[name]
                worker.close()
                self._start(sink_config)
                self._restarts[name] = self._restarts.get(name, 0) + 1

    def reload(self) -> None:
        """Apply the config file again; a config that does not load changes nothing.

        The outcome goes into the status file at once (`logfan reload` waits for it), and
        READY=1 follows only once every unchanged sink has reopened its files.
        """
        self.notifier.reloading()
        try:
            new = load_config(self.config.path)
        except LogfanError as exc:
            self.log.error("reload refused; the running config stays", error=str(exc))
            self._reloaded(error=str(exc))
            self.notifier.ready(f"reload refused: {exc}; " + status.status_line(self.workers))
            return
        old = {s.name: s for s in self.config.sinks}
        wanted = {s.name: s for s in new.sinks}
        same_broker = new.broker == self.config.broker
        removed = [n for n in old if n not in wanted]
        changed = [n for n in old if n in wanted and (wanted[n] != old[n] or not same_broker)]
        added = [n for n in wanted if n not in old]
        self._stop_workers([*removed, *changed])
        for name in [*removed, *changed]:
            self._restart_at.pop(name, None)
        for name in removed:
            self._unbind(old[name])
            self.metrics.forget(self._pids.pop(name, []))
            self._restarts.pop(name, None)
        self.config = new
        self._serve_metrics()
        for name in [*changed, *added]:
            self._start(wanted[name])
        unchanged = [n for n in wanted if n not in changed and n not in added]
        pending = self._reopen(unchanged)
        self.log.info(
            "config reloaded", added=added, removed=removed, changed=changed, unchanged=unchanged
        )
        if pending:
            self.log.warning("sinks did not reopen their files in time", sinks=pending)
        self._reloaded(pending=pending)
        self.notifier.ready(status.status_line(self.workers))

    def _reopen(self, names: list[str]) -> list[str]:
        """Have these sinks reopen their files; wait (RELOAD_WAIT at most) until each says it
        did, or its worker is gone. Returns the sinks that did not say so in time."""
        asked = {name: self.workers[name].figures.reopened for name in names}
        for name in names:
            self.workers[name].request_reopen()
        deadline = time.monotonic() + RELOAD_WAIT
        while True:
            pending = [
                n
                for n, before in asked.items()
                if self.workers[n].is_alive() and self.workers[n].figures.reopened <= before
            ]
            if not pending or time.monotonic() >= deadline:
                return pending
            self._waker.wait(0.02)
            for name in pending:
                self.workers[name].refresh()

    def _reloaded(self, *, error: str | None = None, pending: list[str] | None = None) -> None:
        """Record a reload's outcome and write it to the status file now."""
        seq = int(self.last_reload["seq"]) + 1 if self.last_reload else 1
        row = self._daemon_row
        self._daemon_row = dataclasses.replace(
            row,
            reloads_ok=row.reloads_ok + (error is None),
            reloads_refused=row.reloads_refused + (error is not None),
            last_reload_at=time.time(),
        )
        self.last_reload = {
            "seq": seq,
            "ok": error is None,
            "error": error,
            "pending": pending or [],
            "at": time.time(),
        }
        self._write_status_file()

    def _unbind(self, sink: SinkConfig) -> None:
        try:
            topology.unbind(self.config.broker, sink)
        except Exception as exc:  # noqa: BLE001 - the reload itself succeeded; say what is left
            self.log.warning(
                "removed sink's queue is still bound", queue=sink.queue, error=str(exc)
            )
            return
        self.log.info(
            "removed sink's queue unbound; delete it when its backlog is no longer wanted",
            queue=sink.queue,
        )

    def _stop_workers(self, names: list[str]) -> tuple[dict[str, SinkWorker], list[str]]:
        """Stop these workers; those not done within STOP_TIMEOUT are killed (and named)."""
        stopping = {name: self.workers.pop(name) for name in names}
        for worker in stopping.values():
            worker.stop()
        deadline = time.monotonic() + STOP_TIMEOUT
        for worker in stopping.values():
            worker.join(max(0.0, deadline - time.monotonic()))
        stuck = [name for name, worker in stopping.items() if worker.is_alive()]
        for name in stuck:
            stopping[name].kill()
        for worker in stopping.values():
            worker.close()
        return stopping, stuck

    def stop(self) -> int:
        """Stop every worker (each writes and acks what it holds); 0 if all stopped in time."""
        stopped, stuck = self._stop_workers(list(self.workers))
        delivered = {name: w.figures.delivered for name, w in stopped.items()}
        status.remove_status_file(self.config.daemon.status_file)
        self.metrics.close()
        if stuck:
            self.log.error("workers did not stop in time; unacked lines stay queued", sinks=stuck)
            return 1
        self.log.info("logfan stopped", delivered=delivered)
        return 0
