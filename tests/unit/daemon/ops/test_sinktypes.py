"""`logfan sinks`: installed types, who provides them, and options as the constructor reads them."""

from __future__ import annotations

import pytest

from logfan.daemon.cli import main
from logfan.daemon.config.registry import load_sink_class
from logfan.daemon.ops.sinktypes import describe, list_types, show_type
from logfan.sinks.base import Options, SinkConfigError

BUILT_IN = ("console", "file", "journald", "syslog")


@pytest.mark.parametrize("type_name", BUILT_IN)
def test_every_option_has_its_help_and_no_help_is_stale(type_name: str) -> None:
    """The options read by the constructor and the class's OPTION_HELP name the same keys."""
    cls = load_sink_class(type_name)
    assert [doc.key for doc in describe(type_name)] == list(cls.OPTION_HELP)


@pytest.mark.parametrize("type_name", BUILT_IN)
def test_the_options_listed_are_those_check_accepts(type_name: str) -> None:
    """What `logfan sinks TYPE` lists is what the sink's own check calls valid, no more."""
    cls = load_sink_class(type_name)
    values = {"path": "/tmp/x"} if type_name == "file" else {}
    with pytest.raises(SinkConfigError) as caught:
        cls("s", Options("s", {**values, "zzz_not_an_option": 1}))
    valid = caught.value.reason.split("valid options are: ")[1].split(";")[0].split(", ")
    assert sorted(doc.key for doc in describe(type_name)) == valid


def test_file_options_with_kinds_and_defaults() -> None:
    """The file sink: path required, mode 0640, fsync false, format and its default."""
    docs = {doc.key: doc for doc in describe("file")}
    assert (docs["path"].kind, docs["path"].default) == ("text", "required")
    assert (docs["mode"].kind, docs["mode"].default) == ("file mode (0640)", "0640")
    assert (docs["fsync"].kind, docs["fsync"].default) == ("true or false", "false")
    assert docs["control_chars"].kind == "one of escape, strip, keep"
    assert docs["format"].default == "{timestamp} {host} {tag}: {message}"


def test_list_names_each_type_with_its_distribution() -> None:
    """Every built-in type, provided by logfan, and the test plugin's type by its package."""
    header, *rows = list_types().splitlines()
    assert header.split() == ["TYPE", "PROVIDED", "BY", "OPTIONS"]
    found = {row.split()[0]: row.split()[1] for row in rows}
    assert {name: found[name] for name in BUILT_IN} == dict.fromkeys(BUILT_IN, "logfan")
    assert found["picky"] == "logfan-testsinks"
    assert found["http"] == "logfan-http", "the example plugin package (examples/logfan-http)"


def test_a_third_party_type_with_a_required_option_it_checks() -> None:
    """The example's http sink refuses the stand-in for its required url, yet is described,
    with the help its class declares for every option."""
    cls = load_sink_class("http")
    docs = describe("http")
    assert [doc.key for doc in docs] == list(cls.OPTION_HELP)
    assert (docs[0].key, docs[0].default) == ("url", "required")


def test_one_type_ends_with_the_common_options() -> None:
    """`logfan sinks console`: its entry point, its options, then those every type takes."""
    head, *rest = show_type("console").splitlines()
    assert head.startswith("console: logfan.sinks.console:ConsoleSink (logfan ")
    assert rest[-1].startswith("every sink type also takes: max_retries (5), max_queue")
    listed = {part.split(" (")[0] for part in rest[-1].split(": ", 1)[1].split(", ")}
    assert listed == Options.IMPLICIT - {"type"}  # every key the daemon reads itself


def test_unknown_type_is_one_sentence(capsys: pytest.CaptureFixture[str]) -> None:
    """`logfan sinks kafka`: exit 1, the installed types listed."""
    assert main(["sinks", "kafka"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("logfan sinks: unknown sink type 'kafka'; installed sink types are: ")
