"""The config loader and `logfan check`: configs load; every mistake names file:line: key."""

from __future__ import annotations

import contextlib
import string
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from logfan_testkit import REPO, run_logfan

from logfan.daemon.config.loader import config_path, load_config
from logfan.daemon.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "logfan.yaml"
    path.write_text(textwrap.dedent(text))
    return path


GOOD = """\
broker:
  url: amqp://guest:secret@127.0.0.1:5672//
  exchange: logs
sinks:
  all:
    type: file
    path: /tmp/logfan-test/all.log
    mode: 0600
  console:
    type: console
    stream: stderr
"""


class TestLoadConfig:
    """Valid configs become typed objects."""

    def test_good_config_loads_into_typed_objects(self, tmp_path: Path) -> None:
        """Broker defaults fill in; sinks keep their order, type and queue names."""
        config = load_config(str(write(tmp_path, GOOD)))
        assert config.broker.exchange == "logs"
        assert config.broker.heartbeat == 30
        assert [(s.name, s.type, s.queue) for s in config.sinks] == [
            ("all", "file", "logfan.all"),
            ("console", "console", "logfan.console"),
        ]
        assert config.sinks[0].line == 5

    def test_file_mode_written_in_octal_means_octal(self, tmp_path: Path) -> None:
        """``mode: 0600`` and ``mode: 600`` both mean 0o600 (plain YAML reads 600 as 0o1130)."""
        from logfan.daemon.config.sink import build_sink
        from logfan.sinks.file import FileSink

        for written in ("0600", "600", '"0600"'):
            text = GOOD.replace("mode: 0600", f"mode: {written}")
            sink = build_sink(load_config(str(write(tmp_path, text))).sinks[0])
            assert isinstance(sink, FileSink)
            assert sink.mode == 0o600, written

    def test_config_path_order(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """-c wins over $LOGFAN_CONFIG, which wins over /etc/logfan/logfan.yaml."""
        monkeypatch.delenv("LOGFAN_CONFIG", raising=False)
        assert config_path(None) == "/etc/logfan/logfan.yaml"
        monkeypatch.setenv("LOGFAN_CONFIG", "/env.yaml")
        assert config_path(None) == "/env.yaml"
        assert config_path("/cli.yaml") == "/cli.yaml"


BAD = [
    pytest.param(
        GOOD.replace("type: console", "type: kafka"),
        10,
        "sinks.console.type",
        "unknown sink type 'kafka'; installed sink types are: console, file, ",
        id="unknown-sink-type",
    ),
    pytest.param(
        GOOD.replace("    path: /tmp/logfan-test/all.log\n", ""),
        5,
        "sinks.all.path",
        "this option is required",
        id="missing-required-option",
    ),
    pytest.param(
        GOOD.replace("mode: 0600", "mode: rw"),
        8,
        "sinks.all.mode",
        "expected an octal file mode like 0640, got 'rw'",
        id="wrong-type-mode",
    ),
    pytest.param(
        GOOD.replace("exchange: logs", "exchange: logs\n  prefetch: many"),
        4,
        "broker.prefetch",
        "expected a whole number of at least 1, got 'many'",
        id="wrong-type-prefetch",
    ),
    pytest.param(
        GOOD.replace("stream: stderr", "stream: stderr\n    colour: red"),
        12,
        "sinks.console.colour",
        "unknown option; valid options are:",
        id="unknown-option",
    ),
    pytest.param(
        GOOD.replace("  exchange: logs", "  exchnage: logs"),
        3,
        "broker.exchnage",
        "unknown option; valid options are: connect_timeout, exchange, exchange_durable, "
        "heartbeat, password_env, password_file, prefetch, queue_type, tls, url",
        id="unknown-broker-key",
    ),
    pytest.param(
        GOOD.replace("  url: amqp", "  url: redis"),
        2,
        "broker.url",
        "unsupported broker URL 'redis://guest:***@127.0.0.1:5672//'",
        id="bad-url-password-hidden",
    ),
    pytest.param(
        GOOD.replace("    mode: 0600", "    rotate:\n      keep: 3\n      max_bytes: 10 parsecs"),
        10,
        "sinks.all.rotate.max_bytes",
        "got '10 parsecs'",
        id="nested-option-line",
    ),
    pytest.param(
        GOOD.replace("    stream: stderr", "    stream: [stderr"),
        None,
        None,
        "YAML syntax error",
        id="yaml-syntax-error",
    ),
    pytest.param(
        GOOD.replace("  console:\n", "  all:\n"),
        9,
        "sinks.all",
        "duplicate key",
        id="duplicate-sink",
    ),
    pytest.param(
        GOOD.replace(
            "    path: /tmp/logfan-test/all.log",
            "    path: /tmp/x\n    format: '{message.__class__}'",
        ),
        None,
        "sinks.all.format",
        "unknown placeholder {message.__class__}",
        id="template-attribute-access",
    ),
]


class TestBadConfigs:
    """Every mistake: exit 1, one clear line naming file, line and key, no traceback."""

    @pytest.mark.parametrize(("text", "line", "key", "reason"), BAD)
    def test_check_reports_file_line_and_key(
        self, tmp_path: Path, text: str, line: int | None, key: str | None, reason: str
    ) -> None:
        """`logfan check` prints `FILE:LINE: KEY: REASON` on stderr and exits 1."""
        path = write(tmp_path, text)
        done = run_logfan("check", "-c", str(path))
        err = done.stderr.decode()
        assert done.returncode == 1
        assert done.stdout == b""
        assert "Traceback" not in err
        assert len(err.strip().splitlines()) == 1, err
        assert err.startswith(f"logfan check: {path}:"), err
        if line is not None:
            assert err.startswith(f"logfan check: {path}:{line}: "), err
        if key is not None:
            assert f": {key}: " in err, err
        assert reason in err
        assert "secret" not in err

    def test_yaml_syntax_error_names_the_line(self, tmp_path: Path) -> None:
        """A syntax error points at the line where the parser stopped."""
        path = write(tmp_path, "sinks:\n  a:\n    type: [file\n    path: x\n")
        with pytest.raises(ConfigError) as caught:
            load_config(str(path))
        assert caught.value.line in (3, 4)
        assert "YAML syntax error" in caught.value.reason

    def test_missing_file(self, tmp_path: Path) -> None:
        """A config that does not exist: exit 1 and the OS's reason."""
        done = run_logfan("check", "-c", str(tmp_path / "nope.yaml"))
        assert done.returncode == 1
        assert done.stderr.decode() == (
            f"logfan check: {tmp_path / 'nope.yaml'}: cannot read the config file: "
            "No such file or directory\n"
        )

    def test_unreadable_file(self, tmp_path: Path) -> None:
        """A path that cannot be read as a file (here a directory; root reads any mode)."""
        done = run_logfan("check", "-c", str(tmp_path))
        assert done.returncode == 1
        assert done.stderr.decode() == (
            f"logfan check: {tmp_path}: cannot read the config file: Is a directory\n"
        )

    def test_alias_bomb_is_refused(self, tmp_path: Path) -> None:
        """The 'billion laughs' shape is refused quickly instead of eating memory."""
        lines = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
        for i in range(1, 9):
            prev = chr(ord("a") + i - 1)
            cur = chr(ord("a") + i)
            lines.append(f"{cur}: &{cur} [*{prev}, *{prev}, *{prev}, *{prev}, *{prev}, *{prev}]")
        path = tmp_path / "bomb.yaml"
        path.write_text("\n".join(lines) + "\n")
        with pytest.raises(ConfigError) as caught:
            load_config(str(path))
        assert "alias bomb" in caught.value.reason

    def test_deep_nesting_is_refused(self, tmp_path: Path) -> None:
        """10,000 nested lists: a clear error, not a RecursionError traceback."""
        path = tmp_path / "deep.yaml"
        path.write_text("sinks: " + "[" * 10000 + "]" * 10000 + "\n")
        done = run_logfan("check", "-c", str(path))
        err = done.stderr.decode()
        assert done.returncode == 1
        assert "Traceback" not in err
        assert "nested" in err

    def test_huge_file_is_refused(self, tmp_path: Path) -> None:
        """A config over 1 MiB is refused before it is parsed."""
        path = tmp_path / "huge.yaml"
        path.write_text("# " + "x" * (2 << 20) + "\n")
        done = run_logfan("check", "-c", str(path))
        assert done.returncode == 1
        assert (
            done.stderr.decode() == f"logfan check: {path}: the file is larger than 1048576 bytes\n"
        )

    def test_python_tags_are_not_constructed(self, tmp_path: Path) -> None:
        """yaml.safe_load semantics: a !!python/object tag is an error, never executed."""
        path = write(
            tmp_path,
            GOOD.replace("exchange: logs", "exchange: !!python/object/apply:os.system ['true']"),
        )
        done = run_logfan("check", "-c", str(path))
        assert done.returncode == 1
        assert "unsupported YAML tag 'tag:yaml.org,2002:python/object/apply:os.system'" in (
            done.stderr.decode()
        )
        scalar = write(
            tmp_path, GOOD.replace("exchange: logs", "exchange: !!python/name:os.system")
        )
        done = run_logfan("check", "-c", str(scalar))
        assert done.returncode == 1
        assert done.stderr.decode() == (
            f"logfan check: {scalar}:3: broker.exchange: "
            "unsupported YAML tag 'tag:yaml.org,2002:python/name:os.system'\n"
        )

    def test_good_config_passes_check(self, tmp_path: Path) -> None:
        """`logfan check` on a valid config: exit 0 and a one-line summary."""
        path = write(tmp_path, GOOD)
        path.chmod(0o640)
        done = run_logfan("check", "-c", str(path))
        assert done.returncode == 0, done.stderr
        assert done.stdout.decode().endswith("OK: 2 sink(s): all (file), console (console)\n")

    def test_password_in_a_world_readable_config_is_warned_about(self, tmp_path: Path) -> None:
        """A config holding a password that others can read: a warning, still valid."""
        path = write(tmp_path, GOOD)
        path.chmod(0o644)
        done = run_logfan("check", "-c", str(path))
        out = done.stdout.decode()
        assert done.returncode == 0
        assert f"{path}: warning: the broker URL holds a password and this file is readable" in out
        assert "secret" not in out

    def test_password_in_two_places_is_refused(self, tmp_path: Path) -> None:
        """password_file and a password in the URL: one clear error."""
        text = GOOD.replace("  exchange: logs", "  exchange: logs\n  password_file: /x")
        with pytest.raises(ConfigError) as caught:
            load_config(str(write(tmp_path, text)))
        assert caught.value.key == "broker.url"
        assert "give it in one place only" in caught.value.reason


class TestShippedConfigs:
    """The configs in conf/ are valid."""

    @pytest.mark.parametrize("name", ["logfan.yaml", "rabbitmq.yaml", "cluster.yaml"])
    def test_shipped_config_is_valid(self, name: str) -> None:
        """Each shipped config passes `logfan check`."""
        path = REPO / "conf" / name
        done = run_logfan("check", "-c", str(path))
        assert done.returncode == 0, done.stderr


class TestClusterSettings:
    """queue_type, scope, daemon.host and node lists."""

    def test_queue_type_scope_host_and_node_list(self, tmp_path: Path) -> None:
        """The broker default applies unless a sink overrides it; per-host queues carry the host."""
        from logfan.daemon.broker.connection import nodes
        from logfan.daemon.broker.topology import queue_arguments

        path = tmp_path / "c.yaml"
        path.write_text(
            textwrap.dedent(
                """\
                broker:
                  url: [amqp://a:1//, "amqp://b:2//"]
                  queue_type: quorum
                daemon:
                  host: web-1
                sinks:
                  shared:
                    type: console
                  mine:
                    type: console
                    scope: per-host
                    queue_type: classic
                """
            )
        )
        config = load_config(str(path))
        shared, mine = config.sinks
        assert nodes(config.broker) == ["amqp://a:1//", "amqp://b:2//"]
        assert (shared.queue, shared.dead_queue) == ("logfan.shared", "logfan.shared.dead")
        assert (mine.queue, mine.dead_queue) == ("logfan.mine.web-1", "logfan.mine.web-1.dead")
        assert queue_arguments(shared) == {
            "x-queue-type": "quorum",
            "x-delivery-limit": 20,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": "logfan.shared.dead",
        }
        assert queue_arguments(mine) == {}

    @pytest.mark.parametrize(
        ("text", "key"),
        [
            ("broker: {queue_type: stream}\nsinks: {a: {type: console}}", "broker.queue_type"),
            ("sinks: {a: {type: console, scope: global}}", "sinks.a.scope"),
            ("daemon: {host: 'web 1'}\nsinks: {a: {type: console}}", "daemon.host"),
            ("broker: {url: [1, 2]}\nsinks: {a: {type: console}}", "broker.url"),
        ],
    )
    def test_bad_cluster_settings(self, tmp_path: Path, text: str, key: str) -> None:
        """Each bad value names its key."""
        path = tmp_path / "c.yaml"
        path.write_text(text + "\n")
        with pytest.raises(ConfigError) as caught:
            load_config(str(path))
        assert caught.value.key == key

    def test_check_warns_about_classic_queues_in_a_cluster(self, tmp_path: Path) -> None:
        """Several nodes and a classic queue: `logfan check` says to use quorum queues."""
        path = tmp_path / "c.yaml"
        path.write_text(
            "broker: {url: [amqp://a//, amqp://b//]}\n"
            "sinks: {fine: {type: console, queue_type: quorum}, risky: {type: console}}\n"
        )
        done = run_logfan("check", "-c", str(path))
        assert done.returncode == 0
        out = done.stdout.decode()
        assert "warning: broker.url lists 2 nodes but sink(s) risky use classic queues" in out
        assert "fine" not in out.split("warning:", 1)[1]


class TestFlushInterval:
    """`flush_interval`: how long a line may wait for its batch to fill (0.2 s by default)."""

    def test_default_and_set(self, tmp_path: Path) -> None:
        """Every sink type accepts it; seconds, whole or not."""
        text = "sinks:\n  a: {type: console}\n"
        text += "  b: {type: file, path: /tmp/x.log, flush_interval: 2}\n"
        text += "  c: {type: console, flush_interval: 0.05}\n"
        config = load_config(str(write(tmp_path, text)))
        assert [s.flush_interval for s in config.sinks] == [0.2, 2.0, 0.05]

    @pytest.mark.parametrize("value", ["0", "-1", "3601", "'1s'", "true", "[1]"])
    def test_bad_values_name_the_key(self, tmp_path: Path, value: str) -> None:
        """Not a number of seconds in (0, 3600]: refused, naming the key and the value."""
        path = write(tmp_path, f"sinks:\n  a: {{type: console, flush_interval: {value}}}\n")
        with pytest.raises(ConfigError) as caught:
            load_config(str(path))
        assert caught.value.key == "sinks.a.flush_interval"
        assert "expected seconds, more than 0 and at most 3600" in str(caught.value)

    def test_a_batch_is_due_once_its_oldest_line_waited_flush_interval(
        self, tmp_path: Path
    ) -> None:
        """While lines keep arriving (no linger gap), a batch not yet full is written once its
        first line has waited flush_interval, not when prefetch is reached."""
        from types import SimpleNamespace

        from logfan.daemon.config.sink import build_sink
        from logfan.daemon.consume.consumer import SinkConsumer

        text = "broker: {prefetch: 10000}\nsinks:\n  a: {type: console, flush_interval: 0.25}\n"
        config = load_config(str(write(tmp_path, text)))
        consumer = SinkConsumer(config.broker, config.sinks[0], build_sink(config.sinks[0]))
        consumer._on_delivery(SimpleNamespace(body=b"x" * 50))
        first = consumer._held_since
        for _ in range(2):  # below the prefetch count a consumer starts with
            consumer._on_delivery(SimpleNamespace(body=b"x" * 50))
        assert consumer._held_since == first  # the oldest line's arrival, not the newest
        assert not consumer._batch_due(first + 0.24)
        assert consumer._batch_due(first + 0.25)


yaml_ish = st.text(alphabet=string.printable + "{}[]:&*!|>-'\"#%@`é\x00", max_size=400)
texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=200)


class TestConfigLoaderProperties:
    """load_config on arbitrary text: a Config or a ConfigError, nothing else."""

    @settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(text=yaml_ish)
    def test_arbitrary_text(self, tmp_path: Path, text: str) -> None:
        """Random YAML-looking text never crashes the loader."""
        path = tmp_path / "fuzz.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        message = str(path)
        try:
            load_config(str(path))
        except ConfigError as exc:
            message = str(exc)
        assert message.startswith(str(path))

    @settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(
        value=st.recursive(
            st.none() | st.booleans() | st.integers() | texts,
            lambda c: st.lists(c, max_size=4) | st.dictionaries(texts, c, max_size=4),
            max_leaves=20,
        )
    )
    def test_arbitrary_option_values(self, tmp_path: Path, value: object) -> None:
        """Any YAML value for any file-sink option: a ConfigError at worst."""
        import yaml

        path = tmp_path / "fuzz.yaml"
        for key in ("path", "mode", "format", "fsync", "control_chars", "max_queue"):
            doc = {
                "broker": {"url": f"filesystem://{tmp_path}/s"},
                "sinks": {"f": {"type": "file", "path": "/tmp/x", key: value}},
            }
            path.write_text(yaml.safe_dump(doc))
            with contextlib.suppress(ConfigError):
                load_config(str(path))


class TestMetricsAddress:
    """``daemon.metrics``: HOST:PORT on loopback by default, false for none."""

    def config(self, tmp_path: Path, metrics: str | None) -> Path:
        daemon = "" if metrics is None else f"daemon:\n  metrics: {metrics}\n"
        return write(tmp_path, GOOD + daemon)

    def test_default_is_loopback(self, tmp_path: Path) -> None:
        config = load_config(str(self.config(tmp_path, None)))
        assert config.daemon.metrics_address == ("127.0.0.1", 9464)

    @pytest.mark.parametrize(
        ("given", "address"),
        [
            ("false", None),
            ("'0.0.0.0:9464'", ("0.0.0.0", 9464)),
            ("'[::1]:9100'", ("::1", 9100)),
            ("'localhost:0'", ("localhost", 0)),
        ],
    )
    def test_given(self, tmp_path: Path, given: str, address: tuple[str, int] | None) -> None:
        assert load_config(str(self.config(tmp_path, given))).daemon.metrics_address == address

    @pytest.mark.parametrize("given", ["9464", "'host:99999'", "':9464'", "true", "'host:x'"])
    def test_refused(self, tmp_path: Path, given: str) -> None:
        with pytest.raises(ConfigError, match=r":\d+: daemon\.metrics: expected HOST:PORT"):
            load_config(str(self.config(tmp_path, given)))
