"""A sink's ``select:`` through a running daemon, on RabbitMQ and the embedded broker: every sink
still receives every line; a sink writes only the ones it selects and counts the rest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from logfan_testkit import Daemon, Setup, read_lines, run_logfan, wait_for

from logfan.sinks.base import SEVERITIES

pytestmark = [pytest.mark.rabbitmq, pytest.mark.processes]


def figures(setup: Setup, sink: str) -> dict[str, Any]:
    try:
        doc = json.loads((setup.tmp / "status.json").read_text())
    except (OSError, ValueError):
        return {}
    return dict(doc["sinks"].get(sink, {}))


def file_sink(setup: Setup, name: str, **options: Any) -> dict[str, Any]:
    return {
        "type": "file",
        "path": str(setup.tmp / f"{name}.log"),
        "format": "{severity} {tag} {message}",
        **options,
    }


def test_errors_sink_gets_err_and_worse_the_others_everything(
    setup: Setup, daemons: list[Daemon]
) -> None:
    every, errors, nginx = setup.sink("all"), setup.sink("errors"), setup.sink("nginx")
    config = setup.config(
        {
            every: file_sink(setup, "all"),
            errors: file_sink(setup, "errors", select={"min_severity": "err"}),
            nginx: file_sink(
                setup,
                "nginx",
                select={"tags": ["nginx*"], "exclude_match": "GET /health", "min_severity": 6},
            ),
        },
        daemon={"status_file": str(setup.tmp / "status.json"), "metrics": False},
    )
    daemons.append(Daemon(config, setup.tmp).start())
    sent: list[str] = []
    for severity in SEVERITIES:
        for tag in ("nginx", "cron"):
            lines = [f"{severity}-{tag}-{i}" for i in range(100)]
            lines.append("GET /health 200")
            out = run_logfan(
                "emit", "-c", str(config), "-p", severity, "-t", tag,
                stdin="\n".join(lines).encode(),
            )  # fmt: skip
            assert out.returncode == 0, out.stderr
            sent += [f"{severity} {tag} {line}" for line in lines]
    wait_for(lambda: len(read_lines(setup.tmp / "all.log")) >= len(sent), what="every line")
    wait_for(
        lambda: (
            figures(setup, errors).get("delivered", 0) + figures(setup, errors).get("filtered", 0)
            >= len(sent)
            and figures(setup, nginx).get("delivered", 0) + figures(setup, nginx).get("filtered", 0)
            >= len(sent)
        ),
        what="the selecting sinks to have taken every line from their queues",
    )
    severe = {"emerg", "alert", "crit", "err"}
    assert read_lines(setup.tmp / "all.log") == sent
    want_errors = [line for line in sent if line.split(" ")[0] in severe]
    assert read_lines(setup.tmp / "errors.log") == want_errors
    want_nginx = [
        line
        for line in sent
        if line.split(" ")[1] == "nginx"
        and "GET /health" not in line
        and line.split(" ")[0] != "debug"
    ]
    assert read_lines(setup.tmp / "nginx.log") == want_nginx
    assert figures(setup, errors)["filtered"] == len(sent) - len(want_errors)
    assert figures(setup, nginx)["filtered"] == len(sent) - len(want_nginx)
    assert figures(setup, every)["filtered"] == 0
    if setup.rabbitmq is not None:
        assert setup.queue_depth(f"logfan.{errors}") == 0  # filtered lines are acknowledged


def test_catastrophic_pattern_does_not_stall_the_sink(setup: Setup, daemons: list[Daemon]) -> None:
    """``(a+)+$`` against 64 KiB of ``a`` and a ``!``: exponential in a backtracking engine."""
    picky = setup.sink("picky")
    config = setup.config(
        {
            picky: {
                "type": "file",
                "path": str(setup.tmp / "picky.log"),
                "format": "{message}",
                "max_line_bytes": 70_000,
                "select": {"match": "(a+)+$"},
            }
        },
        daemon={"status_file": str(setup.tmp / "status.json"), "metrics": False},
    )
    daemons.append(Daemon(config, setup.tmp).start())
    evil = "a" * 65536 + "!"
    out = run_logfan(
        "emit", "-c", str(config), "--max-line-bytes", "70000",
        stdin=f"{evil}\n{evil}\nthe next line, aaa\n".encode(),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    # a generous bound on a hang, not a timing: the sink takes the next line at once
    wait_for(lambda: read_lines(setup.tmp / "picky.log") == ["the next line, aaa"], timeout=60)
    wait_for(lambda: figures(setup, picky).get("filtered") == 2, what="two lines filtered")


def test_check_refuses_a_bad_expression(tmp_path: Path) -> None:
    config = tmp_path / "logfan.yaml"
    config.write_text(
        f"broker: {{url: 'filesystem://{tmp_path}/spool'}}\n"
        "sinks:\n"
        "  errors:\n"
        "    type: file\n"
        f"    path: {tmp_path}/errors.log\n"
        "    select:\n"
        "      match: 'time(out'\n"
    )
    out = run_logfan("check", "-c", str(config))
    assert out.returncode == 1
    assert (
        f"{config}:7: sinks.errors.select.match: not a valid RE2 expression" in out.stderr.decode()
    )
