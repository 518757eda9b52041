"""Sink types found through the ``logfan.sinks`` entry points, like any plugin."""

from __future__ import annotations

from pathlib import Path

import pytest

from logfan.daemon.cli import main
from logfan.daemon.config.registry import GROUP, installed_sink_types, load_sink_class
from logfan.sinks.console import ConsoleSink
from logfan.sinks.file import FileSink
from logfan.sinks.journald import JournaldSink
from logfan.sinks.syslog import SyslogSink

BUILT_IN = {
    "console": ConsoleSink,
    "file": FileSink,
    "syslog": SyslogSink,
    "journald": JournaldSink,
}


@pytest.fixture
def broken_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An installed distribution whose sink type names a module that does not exist."""
    info = tmp_path / "logfan_broken_sink-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: logfan-broken-sink\nVersion: 1.0\n"
    )
    (info / "entry_points.txt").write_text(
        f"[{GROUP}]\nbroken = logfan_no_such_module_for_tests:Sink\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return "broken"


class TestInstalledSinkTypes:
    """``installed_sink_types``: every registered type, by its ``type:`` name."""

    def test_built_in_types_are_registered(self) -> None:
        """console, file, syslog and journald come as entry points of logfan itself."""
        found = installed_sink_types()
        assert set(BUILT_IN) <= set(found)
        assert all(found[name].group == GROUP for name in BUILT_IN)

    def test_another_distribution_adds_its_types(self, broken_plugin: str) -> None:
        """A type registered by another installed distribution is found too."""
        assert broken_plugin in installed_sink_types()


class TestLoadSinkClass:
    """``load_sink_class``: the class for a type name, or a LookupError to show the user."""

    @pytest.mark.parametrize("name", sorted(BUILT_IN))
    def test_returns_the_class(self, name: str) -> None:
        """Each built-in type name loads its sink class."""
        assert load_sink_class(name) is BUILT_IN[name]

    def test_unknown_type_lists_the_installed_ones(self) -> None:
        """An unknown name: LookupError naming it and every installed type, sorted."""
        with pytest.raises(LookupError) as caught:
            load_sink_class("kafka")
        installed = ", ".join(sorted(installed_sink_types()))
        assert str(caught.value) == (
            f"unknown sink type 'kafka'; installed sink types are: {installed}"
        )
        assert "console, file, " in str(caught.value)

    def test_broken_plugin_is_a_lookup_error(self, broken_plugin: str) -> None:
        """A plugin that fails to import: LookupError naming it and its target, no traceback."""
        with pytest.raises(LookupError) as caught:
            load_sink_class(broken_plugin)
        message = str(caught.value)
        assert message.startswith(
            "sink type 'broken' (logfan_no_such_module_for_tests:Sink) failed to import: "
        )
        assert "logfan_no_such_module_for_tests" in message.partition("failed to import: ")[2]


@pytest.fixture
def flushless_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An installed distribution whose sink class has no ``flush``."""
    (tmp_path / "logfan_flushless_sink.py").write_text(
        "class Sink:\n"
        "    def __init__(self, name, options):\n"
        "        options.finish()\n"
        "    def open(self): pass\n"
        "    def write(self, records): pass\n"
        "    def close(self): pass\n"
    )
    info = tmp_path / "logfan_flushless_sink-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: logfan-flushless-sink\nVersion: 1.0\n"
    )
    (info / "entry_points.txt").write_text(f"[{GROUP}]\nflushless = logfan_flushless_sink:Sink\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return "flushless"


class TestSinkMethods:
    """A sink class must have every method the daemon calls; check says which one is missing."""

    def test_missing_flush_is_named(self, flushless_plugin: str) -> None:
        """A class without ``flush``: LookupError naming ``flush`` and what a sink defines."""
        with pytest.raises(LookupError) as caught:
            load_sink_class(flushless_plugin)
        assert str(caught.value) == (
            "sink type 'flushless' (logfan_flushless_sink:Sink) lacks flush: a sink class "
            "defines open, write, flush, close (see logfan.sinks.base)"
        )

    def test_logfan_check_refuses_it(
        self, flushless_plugin: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """`logfan check` exits 1, naming the sink's type key and ``flush``."""
        config = tmp_path / "logfan.yaml"
        config.write_text(f"sinks:\n  out:\n    type: {flushless_plugin}\n")
        assert main(["check", "-c", str(config)]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"logfan check: {config}:3: sinks.out.type: sink type 'flushless'")
        assert "lacks flush" in err
