"""Hot reload: sinks added, removed, changed; bad configs refused; untouched sinks lose nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from logfan_testkit import LOGFAN, Daemon, Setup, log_events, read_lines, tally, wait_for

pytestmark = [pytest.mark.rabbitmq, pytest.mark.processes]


class Stream:
    """A long-running `logfan emit` fed numbered lines at a steady pace until stopped."""

    def __init__(self, config: Path) -> None:
        self.proc = subprocess.Popen([*LOGFAN, "emit", "-c", str(config)], stdin=subprocess.PIPE)
        self.sent: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        assert self.proc.stdin is not None
        n = 0
        while not self._stop.is_set():
            line = f"stream {n}"
            self.proc.stdin.write(line.encode() + b"\n")
            self.proc.stdin.flush()
            self.sent.append(line)
            n += 1
            time.sleep(0.005)
        self.proc.stdin.close()

    def finish(self) -> list[str]:
        self._stop.set()
        self._thread.join()
        assert self.proc.wait(60) == 0
        return self.sent


def rewrite(path: Path, doc: dict[str, Any]) -> None:
    """Replace the config the way editors do: write a new file, rename it over the old one."""
    tmp = path.with_suffix(".new")
    tmp.write_text(yaml.safe_dump(doc))
    os.replace(tmp, path)


class TestReload:
    """Reloading the config while lines flow."""

    def test_add_remove_change_and_bad_config(self, setup: Setup, daemons: list[Daemon]) -> None:
        """Each edit is applied (file watch and SIGHUP); the untouched sink gets every line."""
        keep, gone, fmt, new = (setup.sink(n) for n in ("keep", "gone", "fmt", "new"))
        out = {n: setup.tmp / f"{n}.log" for n in (keep, gone, fmt, new)}

        def file_sink(name: str, template: str = "{message}") -> dict[str, Any]:
            return {"type": "file", "path": str(out[name]), "format": template}

        config = setup.config({keep: file_sink(keep), gone: file_sink(gone), fmt: file_sink(fmt)})
        doc = yaml.safe_load(config.read_text())
        daemon = Daemon(config, setup.tmp).start()
        daemons.append(daemon)
        wait_for(lambda: len(log_events(daemon, "consumer connected")) == 3, what="three consumers")
        stream = Stream(config)
        wait_for(lambda: len(read_lines(out[keep])) > 200, what="lines flowing")

        # 1. Add a sink and remove one, by an editor-style rename (the file watch reloads).
        doc["sinks"][new] = file_sink(new)
        del doc["sinks"][gone]
        rewrite(config, doc)
        wait_for(lambda: len(log_events(daemon, "config reloaded")) == 1, what="reload 1")
        reloaded = log_events(daemon, "config reloaded")[0]
        assert (reloaded["added"], reloaded["removed"], reloaded["changed"]) == ([new], [gone], [])
        wait_for(lambda: len(read_lines(out[new])) > 100, what="the new sink's lines")
        gone_depth = setup.queue_depth(f"logfan.{gone}")

        # 2. Change one sink's format, with SIGHUP (what `systemctl reload` sends).
        doc["sinks"][fmt] = file_sink(fmt, "v2 {message}")
        config.write_text(yaml.safe_dump(doc))
        assert daemon.proc is not None
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: len(log_events(daemon, "config reloaded")) >= 2, what="reload 2")
        changed = [e["changed"] for e in log_events(daemon, "config reloaded")][1:]
        assert [fmt] in changed
        wait_for(lambda: read_lines(out[fmt])[-1:][0].startswith("v2 "), what="the new format")

        # 3. A bad config is refused; the running one goes on.
        reloads = len(log_events(daemon, "config reloaded"))
        config.write_text("sinks: [this is: not valid\n")
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for(
            lambda: bool(log_events(daemon, "reload refused; the running config stays")),
            what="refusal",
        )
        refusal = log_events(daemon, "reload refused; the running config stays")[0]
        assert "YAML syntax error" in refusal["error"]
        flowing = len(read_lines(out[keep]))
        wait_for(
            lambda: len(read_lines(out[keep])) > flowing + 100, what="lines after a bad reload"
        )

        sent = stream.finish()
        wait_for(lambda: set(read_lines(out[keep])) >= set(sent), what="every line in keep")
        assert daemon.stop() == 0
        assert len(log_events(daemon, "config reloaded")) == reloads, (
            "the bad config changed nothing"
        )
        assert read_lines(out[keep]) == sent, "the untouched sink: every line, once, in order"
        tally(keep, sent, read_lines(out[keep]))
        fmt_lines = [line.removeprefix("v2 ") for line in read_lines(out[fmt])]
        _, lost, _ = tally(fmt, sent, fmt_lines)
        assert lost == 0, "a changed sink keeps its queue: nothing lost across the restart"
        # The removed sink's queue was unbound at the reload: it keeps its backlog, no new lines.
        assert setup.queue_depth(f"logfan.{gone}") == gone_depth


class TestReloadCommand:
    """`logfan reload` (what `systemctl reload` runs) says what the daemon made of the config."""

    def test_refused_config_fails_and_good_one_returns_after_reopening(
        self, setup: Setup, daemons: list[Daemon]
    ) -> None:
        """A refused config: exit 1 with the daemon's reason, the old config runs on. A good
        one: exit 0 only once the file sink reopened its file (a renamed file is there again)."""
        name = setup.sink("all")
        out = setup.tmp / "all.log"
        status = setup.tmp / "status.json"
        config = setup.config({name: {"type": "file", "path": str(out), "format": "{message}"}})
        good = yaml.safe_load(config.read_text())
        good["daemon"] = {"status_file": str(status)}
        rewrite(config, good)
        daemon = Daemon(config, setup.tmp).start()
        daemons.append(daemon)
        wait_for(status.exists, what="the status file")

        bad = {**good, "sinks": {name: {"type": "file", "path": str(out), "mode": "rw"}}}
        rewrite(config, bad)
        refused = subprocess.run(
            [*LOGFAN, "reload", "-c", str(config)], capture_output=True, timeout=90, check=False
        )
        assert refused.returncode == 1
        assert refused.stderr.decode().startswith(
            "logfan reload: reload refused; the running config stays: "
        )
        assert "mode: expected an octal file mode like 0640, got 'rw'" in refused.stderr.decode()

        rewrite(config, good)
        out.rename(out.with_name("all.log.1"))  # as logrotate does
        done = subprocess.run(
            [*LOGFAN, "reload", "-c", str(config)], capture_output=True, timeout=90, check=False
        )
        assert (done.returncode, done.stdout.decode()) == (0, "reloaded\n"), done.stderr
        assert out.exists(), "the sink reopened its file before reload returned"
        assert daemon.proc is not None
        assert daemon.proc.poll() is None
        assert daemon.stop() == 0
