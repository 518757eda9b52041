"""deploy/prometheus-rules.yml: valid for promtool, and each alert fires when it should (and only
then), by promtool's own rule tests over made-up series."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = [pytest.mark.prometheus, pytest.mark.processes]

REPO = Path(__file__).parents[2]
RULES = REPO / "deploy" / "prometheus-rules.yml"
PROMTOOL = REPO / ".venv" / "prometheus" / "usr" / "bin" / "promtool"
SINK = {"instance": "web1:9464", "job": "logfan", "sink": "all", "type": "file"}


def series(name: str, values: str, **labels: str) -> dict[str, str]:
    shown = ",".join(f'{k}="{v}"' for k, v in {**SINK, **labels}.items())
    return {"series": f"{name}{{{shown}}}", "values": values}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL.exists(), "promtool is missing: `make test` unpacks it (make prometheus)"
    return subprocess.run(
        [str(PROMTOOL), *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_rules_check() -> None:
    result = promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 6 rules found" in result.stdout


def fires(
    alert: str, at: str, input_series: list[dict[str, str]], expected: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "interval": "1m",
        "input_series": input_series,
        "alert_rule_test": [{"eval_time": at, "alertname": alert, "exp_alerts": expected}],
    }


def alert_annotations(alert: str, **values: str) -> dict[str, str]:
    """The alert's annotations as the rules file writes them, with ``$value`` and labels filled."""
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == alert:
                out = {}
                for key, template in rule["annotations"].items():
                    text = str(template)
                    for name, value in {**SINK, **values}.items():
                        text = text.replace(f"{{{{ $labels.{name} }}}}", value)
                    out[key] = text.replace("{{ $value }}", values.get("value", ""))
                return out
    raise AssertionError(f"no alert {alert}")


def test_alerts_fire_when_they_should(tmp_path: Path) -> None:
    stuck = [
        series("logfan_sink_backlog", "500x30"),
        series("logfan_sink_lines_delivered_total", "1000x30"),
        series("logfan_sink_lines_filtered_total", "0x30"),
    ]
    flowing = [
        series("logfan_sink_backlog", "500x30"),
        series("logfan_sink_lines_delivered_total", "1000+600x30"),
        series("logfan_sink_lines_filtered_total", "0x30"),
    ]
    filtering = [  # a sink whose select takes none of the lines: it still keeps up
        series("logfan_sink_backlog", "500x30"),
        series("logfan_sink_lines_delivered_total", "0x30"),
        series("logfan_sink_lines_filtered_total", "0+600x30"),
    ]
    growing = [series("logfan_sink_backlog", "20000+1000x90")]
    draining = [series("logfan_sink_backlog", "90000-1000x60")]
    dead = [
        series("logfan_sink_lines_dead_lettered_total", "0 0 0 3 3 3"),
        series("logfan_sink_lines_dropped_total", "0x5"),
    ]
    critical = {**SINK, "severity": "critical"}
    warning = {**SINK, "severity": "warning"}
    tests = [
        fires(
            "LogfanSinkNotDelivering",
            "20m",
            stuck,
            [
                {
                    "exp_labels": critical,
                    "exp_annotations": alert_annotations("LogfanSinkNotDelivering", value="500"),
                }
            ],
        ),
        fires("LogfanSinkNotDelivering", "20m", flowing, []),
        fires("LogfanSinkNotDelivering", "20m", filtering, []),
        fires(
            "LogfanSinkBacklogGrowing",
            "80m",
            growing,
            [
                {
                    "exp_labels": warning,
                    "exp_annotations": alert_annotations(
                        "LogfanSinkBacklogGrowing", value="100000"
                    ),
                }
            ],
        ),
        fires("LogfanSinkBacklogGrowing", "50m", draining, []),
        fires(
            "LogfanSinkDeadLetters",
            "5m",
            dead,
            [
                {
                    "exp_labels": warning,
                    "exp_annotations": alert_annotations("LogfanSinkDeadLetters", value="3"),
                }
            ],
        ),
    ]
    test_file = tmp_path / "rules.test.yml"
    test_file.write_text(
        yaml.safe_dump({"rule_files": [str(RULES)], "evaluation_interval": "1m", "tests": tests})
    )
    result = promtool("test", "rules", str(test_file))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
