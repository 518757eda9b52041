"""Sink options: the one vocabulary of checked getters, and what sinks make of any value."""

from __future__ import annotations

import contextlib

from hypothesis import given
from hypothesis import strategies as st

from logfan.daemon.config.yamlsource import SourceInt
from logfan.sinks.base import Options, SinkConfigError
from logfan.sinks.console import ConsoleSink
from logfan.sinks.file import FileSink

texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=200)


class TestSinkOptionsProperties:
    """Any option values given to a built-in sink: the sink, or a SinkConfigError."""

    @given(
        options=st.dictionaries(
            st.sampled_from(["stream", "format", "control_chars", "x"]), texts, max_size=3
        )
    )
    def test_sink_options_raise_only_sink_config_error(self, options: dict[str, str]) -> None:
        """Arbitrary option values: a sink or a SinkConfigError."""
        for cls, base in (
            (ConsoleSink, {"type": "console"}),
            (FileSink, {"type": "file", "path": "/tmp/x"}),
        ):
            with contextlib.suppress(SinkConfigError):
                cls("s", Options("s", {**base, **options}))


#: bytes per unit, as written in the docs (SI units are powers of 10, IEC units of 2)
UNITS = {
    "B": 1,
    "KB": 1000,
    "KiB": 1024,
    "MB": 1000**2,
    "MiB": 1024**2,
    "GB": 1000**3,
    "GiB": 1024**3,
}


class TestParseSize:
    """``parse_size``: bytes for a size written with a unit, None for anything else."""

    def test_units(self) -> None:
        """Each unit, SI and IEC."""
        from logfan.sinks.options import parse_size

        assert parse_size("1B") == 1
        assert parse_size("10KB") == 10_000
        assert parse_size("10KiB") == 10_240
        assert parse_size("100MB") == 100_000_000
        assert parse_size("512MiB") == 512 * 1024 * 1024
        assert parse_size("1GB") == 1_000_000_000
        assert parse_size("2GiB") == 2 * 1024**3

    def test_spaces(self) -> None:
        """Spaces around and between the number and the unit are allowed."""
        from logfan.sinks.options import parse_size

        assert parse_size("10 KB") == 10_000
        assert parse_size("  1GiB  ") == 1024**3
        assert parse_size("5\tMiB") == 5 * 1024**2

    def test_refusals(self) -> None:
        """No unit, an unknown or lower-case unit, a fraction, a sign, or no text: None."""
        from logfan.sinks.options import parse_size

        for value in ("", "MB", "1", "1.5MB", "-1MB", "+1MB", "1 mb", "1kb", "1TB", "1 M B"):
            assert parse_size(value) is None, value
        for other in (1024, None, b"1MB", 1.5, ["1MB"]):
            assert parse_size(other) is None, other

    @given(number=st.integers(0, 10**6), unit=st.sampled_from(sorted(UNITS)))
    def test_number_times_unit(self, number: int, unit: str) -> None:
        """Any whole number with any unit is that many times the unit's bytes."""
        from logfan.sinks.options import parse_size

        assert parse_size(f"{number}{unit}") == number * UNITS[unit]
        assert parse_size(f"{number} {unit}") == number * UNITS[unit]


class TestGetStr:
    """``get_str``: a non-empty string."""

    def test_value(self) -> None:
        """A string is returned as it is."""
        from logfan.sinks.options import OptionReader

        assert OptionReader({"path": "/var/log/all.log"}).get_str("path") == "/var/log/all.log"

    def test_default_returned_untouched(self) -> None:
        """A missing key gives the default as it is, unchecked (None, or anything else)."""
        from logfan.sinks.options import OptionReader

        reader = OptionReader({})
        assert reader.get_str("name", None) is None
        marker = object()
        assert reader.get_str("other", marker) is marker

    def test_refusals(self) -> None:
        """An empty string, a number, or null given explicitly is refused, the value quoted."""
        import pytest

        from logfan.sinks.options import OptionError, OptionReader

        for value, shown in (("", "''"), (5, "5"), (None, "None"), (["a"], "['a']")):
            with pytest.raises(OptionError) as caught:
                OptionReader({"path": value}).get_str("path", None)
            assert caught.value.key == "path"
            assert caught.value.reason == f"expected a non-empty string, got {shown}"


class TestGetChoice:
    """``get_choice``: one of the given strings."""

    def test_value_and_default(self) -> None:
        """A listed value is returned; a missing key gives the default."""
        from logfan.sinks.options import OptionReader

        reader = OptionReader({"stream": "stderr"})
        assert reader.get_choice("stream", ("stdout", "stderr"), "stdout") == "stderr"
        assert reader.get_choice("protocol", ("rfc5424", "rfc3164"), None) is None

    def test_refusal_lists_the_choices(self) -> None:
        """Anything else is refused, naming the choices in their order."""
        import pytest

        from logfan.sinks.options import OptionError, OptionReader

        with pytest.raises(OptionError) as caught:
            OptionReader({"stream": "tty"}).get_choice("stream", iter(["stdout", "stderr"]))
        assert caught.value.reason == "expected one of stdout, stderr; got 'tty'"


class TestGetInt:
    """``get_int``: a whole number within its bounds, the message naming them."""

    def test_value(self) -> None:
        """An int within the bounds is returned as a plain int (a SourceInt too)."""
        from logfan.sinks.options import OptionReader

        reader = OptionReader({"keep": 3, "mode": SourceInt(416, "0640")})
        assert reader.get_int("keep", minimum=1, maximum=1000) == 3
        value = reader.get_int("mode")
        assert (value, type(value)) == (416, int)

    def test_bounds_are_inclusive(self) -> None:
        """The minimum and the maximum themselves are accepted."""
        from logfan.sinks.options import OptionReader

        reader = OptionReader({"low": 1, "high": 1000})
        assert reader.get_int("low", minimum=1, maximum=1000) == 1
        assert reader.get_int("high", minimum=1, maximum=1000) == 1000

    def test_messages(self) -> None:
        """The message says the unit and the bounds, and quotes the value."""
        import pytest

        from logfan.sinks.options import OptionError, OptionReader

        cases: list[tuple[object, int | None, int | None, str, str]] = [
            ("many", None, None, "", "expected a whole number, got 'many'"),
            (True, None, None, "", "expected a whole number, got True"),
            (1.0, None, None, "", "expected a whole number, got 1.0"),
            (0, 1, None, "", "expected a whole number of at least 1, got 0"),
            (11, None, 10, "", "expected a whole number of at most 10, got 11"),
            (
                1001,
                1,
                1000,
                "rotated files",
                "expected a whole number of rotated files from 1 to 1000, got 1001",
            ),
            (-1, 0, None, "seconds", "expected a whole number of seconds of at least 0, got -1"),
        ]
        for value, minimum, maximum, unit, reason in cases:
            with pytest.raises(OptionError) as caught:
                OptionReader({"n": value}).get_int("n", minimum=minimum, maximum=maximum, unit=unit)
            assert (caught.value.key, caught.value.reason) == ("n", reason)

    def test_default_returned_untouched(self) -> None:
        """A missing key gives the default, even one outside the bounds."""
        from logfan.sinks.options import OptionReader

        assert OptionReader({}).get_int("n", 0, minimum=1) == 0
        assert OptionReader({}).get_int("n", None) is None


class TestGetFloat:
    """``get_float``: a number, at least its minimum."""

    def test_value(self) -> None:
        """An int or a float is returned as a float."""
        from logfan.sinks.options import OptionReader

        reader = OptionReader({"a": 5, "b": 0.5})
        value = reader.get_float("a", minimum=0.1)
        assert (value, type(value)) == (5.0, float)
        assert reader.get_float("b", minimum=0.5) == 0.5

    def test_refusals(self) -> None:
        """A bool, a string, or a number below the minimum is refused."""
        import pytest

        from logfan.sinks.options import OptionError, OptionReader

        for value, minimum, reason in (
            (True, None, "expected a number, got True"),
            ("5", None, "expected a number, got '5'"),
            (0.05, 0.1, "expected a number of at least 0.1, got 0.05"),
        ):
            with pytest.raises(OptionError) as caught:
                OptionReader({"timeout": value}).get_float("timeout", minimum=minimum)
            assert caught.value.reason == reason

    def test_default_returned_untouched(self) -> None:
        """A missing key gives the default as it is."""
        from logfan.sinks.options import OptionReader

        assert OptionReader({}).get_float("timeout", 5) == 5
        assert type(OptionReader({}).get_float("timeout", 5)) is int

    def test_nan_is_not_at_least_the_minimum(self) -> None:
        """NaN is not at least any minimum: refused (connect_timeout: .nan)."""
        import pytest

        from logfan.sinks.options import OptionError, OptionReader

        with pytest.raises(OptionError) as caught:
            OptionReader({"connect_timeout": float("nan")}).get_float(
                "connect_timeout", minimum=0.1
            )
        assert caught.value.reason == "expected a number of at least 0.1, got nan"


class TestGetSeconds:
    """``get_seconds``: a duration more than 0 and at most ``maximum``."""

    def test_value(self) -> None:
        """A positive number up to the maximum, as a float."""
        from logfan.sinks.options import OptionReader

        reader = OptionReader({"a": 0.2, "b": 3600, "c": 10})
        assert reader.get_seconds("a") == 0.2
        value = reader.get_seconds("b")
        assert (value, type(value)) == (3600.0, float)
        assert reader.get_seconds("c", maximum=10) == 10.0

    def test_refusals(self) -> None:
        """0, negatives, more than the maximum, NaN, bools and text are refused."""
        import pytest

        from logfan.sinks.options import OptionError, OptionReader

        for value in (0, -1, 3600.5, float("nan"), float("inf"), True, "1s"):
            with pytest.raises(OptionError) as caught:
                OptionReader({"flush_interval": value}).get_seconds("flush_interval")
            assert caught.value.reason == (
                f"expected seconds, more than 0 and at most 3600, got {value!r}"
            )
        with pytest.raises(OptionError, match=r"at most 0\.5, got 1"):
            OptionReader({"t": 1}).get_seconds("t", maximum=0.5)

    def test_default_returned_untouched(self) -> None:
        """A missing key gives the default as it is."""
        from logfan.sinks.options import OptionReader

        assert OptionReader({}).get_seconds("t", None) is None


class TestGetBool:
    """``get_bool``: true or false, nothing that merely looks like it."""

    def test_value(self) -> None:
        """YAML's true and false."""
        from logfan.sinks.options import OptionReader

        reader = OptionReader({"a": True, "b": False})
        assert reader.get_bool("a") is True
        assert reader.get_bool("b", True) is False
        assert reader.get_bool("c", True) is True

    def test_refusals(self) -> None:
        """1, "yes" and "true" as text are refused."""
        import pytest

        from logfan.sinks.options import OptionError, OptionReader

        for value in (1, "yes", "true", None):
            with pytest.raises(OptionError) as caught:
                OptionReader({"verify": value}).get_bool("verify", True)
            assert caught.value.reason == f"expected true or false, got {value!r}"


class TestGetSize:
    """``get_size``: bytes, as a number or with a unit; at least 1."""

    def test_value(self) -> None:
        """A positive int is bytes; a text with a unit is parsed."""
        from logfan.sinks.options import OptionReader

        reader = OptionReader({"a": 1, "b": "100MiB", "c": SourceInt(2048, "2048")})
        assert reader.get_size("a") == 1
        assert reader.get_size("b") == 100 * 1024**2
        value = reader.get_size("c")
        assert (value, type(value)) == (2048, int)

    def test_refusals(self) -> None:
        """0, 0B, bools, fractions and unknown units are refused, the value quoted."""
        import pytest

        from logfan.sinks.options import OptionError, OptionReader

        for value in (0, -1, "0B", True, 1.5, "10 parsecs", "100"):
            with pytest.raises(OptionError) as caught:
                OptionReader({"max_bytes": value}).get_size("max_bytes")
            assert caught.value.reason == (
                f"expected a size like 100MiB, 1GB or a number of bytes, got {value!r}"
            )

    def test_default_returned_untouched(self) -> None:
        """A missing key gives the default as it is."""
        from logfan.sinks.options import OptionReader

        assert OptionReader({}).get_size("max_bytes", None) is None


class TestGetMode:
    """``get_mode``: a file mode written in octal, however YAML read it."""

    def test_yaml_integers_by_their_text(self) -> None:
        """``0640`` (YAML: 416) and ``640`` (YAML: 640) both mean 0o640."""
        from logfan.sinks.options import OptionReader

        assert OptionReader({"mode": SourceInt(0o640, "0640")}).get_mode("mode", 0o600) == 0o640
        assert OptionReader({"mode": SourceInt(640, "640")}).get_mode("mode", 0o600) == 0o640
        assert OptionReader({"mode": SourceInt(0o7, "0o7")}).get_mode("mode", 0o600) == 0o7

    def test_strings(self) -> None:
        """A quoted mode is read as octal digits, with or without 0 or 0o."""
        from logfan.sinks.options import OptionReader

        for text in ("0640", "640", "0o640", " 0640 "):
            assert OptionReader({"mode": text}).get_mode("mode", 0o600) == 0o640, text
        assert OptionReader({"mode": "1777"}).get_mode("mode", 0o600) == 0o1777

    def test_python_int_is_the_mode(self) -> None:
        """An int built in Python (no source text) is the mode itself."""
        from logfan.sinks.options import OptionReader

        assert OptionReader({"mode": 0o600}).get_mode("mode", 0o644) == 0o600

    def test_default(self) -> None:
        """A missing key gives the default, and the key counts as a valid option."""
        import pytest

        from logfan.sinks.options import OptionError, OptionReader

        reader = OptionReader({"x": 1})
        assert reader.get_mode("mode", 0o640) == 0o640
        with pytest.raises(OptionError, match=r"valid options are: mode$"):
            reader.finish()

    def test_refusals(self) -> None:
        """Not octal digits, more than four of them, none, bools, floats: refused."""
        import pytest

        from logfan.sinks.options import OptionError, OptionReader

        for value in ("rw", "0999", "12345", "", SourceInt(0x1A0, "0x1A0"), True, 640.0, -1):
            with pytest.raises(OptionError) as caught:
                OptionReader({"mode": value}).get_mode("mode", 0o600)
            assert caught.value.reason == (
                f"expected an octal file mode like 0640, got {value!r}"
            ), value


class TestGetRawAndHas:
    """``get_raw`` takes any shape; ``has`` only looks."""

    def test_get_raw(self) -> None:
        """The value as it is, or the default (None unless given)."""
        from logfan.sinks.options import OptionReader

        value = {"nested": [1, 2]}
        reader = OptionReader({"fields": value})
        assert reader.get_raw("fields") is value
        assert reader.get_raw("absent") is None
        assert reader.get_raw("absent", 7) == 7

    def test_has_does_not_consume(self) -> None:
        """``has`` says whether a key is set; the key is still unknown to ``finish``."""
        import pytest

        from logfan.sinks.options import OptionError, OptionReader

        reader = OptionReader({"framing": "lf"})
        assert reader.has("framing")
        assert not reader.has("protocol")
        with pytest.raises(OptionError) as caught:
            reader.finish()
        assert caught.value.key == "framing"


class TestRequired:
    """A getter without a default: the key must be there."""

    def test_missing_required_key(self) -> None:
        """Missing: "this option is required", naming the key."""
        import pytest

        from logfan.sinks.options import OptionError, OptionReader

        for get in ("get_str", "get_int", "get_float", "get_seconds", "get_bool", "get_size"):
            with pytest.raises(OptionError) as caught:
                getattr(OptionReader({}), get)("path")
            assert (caught.value.key, caught.value.reason) == ("path", "this option is required")

    def test_example_quoted(self) -> None:
        """A reader with an example quotes it: ", as in EXAMPLE"."""
        import pytest

        from logfan.sinks.options import OptionError, OptionReader

        with pytest.raises(OptionError) as caught:
            OptionReader({}, example="{max_bytes: 100MiB}").get_size("max_bytes")
        assert caught.value.reason == "this option is required, as in {max_bytes: 100MiB}"

    def test_sink_options(self) -> None:
        """A sink's Options: a SinkConfigError naming the sink."""
        import pytest

        with pytest.raises(SinkConfigError) as caught:
            Options("all", {"type": "file"}).get_str("path")
        assert (caught.value.sink, caught.value.key) == ("all", "path")
        assert str(caught.value) == "sink 'all', option 'path': this option is required"


class TestSection:
    """``section``: a nested mapping read by a reader of its own."""

    def test_absent(self) -> None:
        """No such key: None, and the key is a valid option."""
        import pytest

        from logfan.sinks.options import OptionError, OptionReader

        reader = OptionReader({"x": 1})
        assert reader.section("tls", example="{ca_file: /etc/ca.pem}") is None
        with pytest.raises(OptionError, match=r"valid options are: tls$"):
            reader.finish()

    def test_not_a_mapping(self) -> None:
        """A value that is not a mapping is refused, quoting the example."""
        import pytest

        from logfan.sinks.options import OptionError, OptionReader

        with pytest.raises(OptionError) as caught:
            OptionReader({"tls": "yes"}).section("tls", example="{ca_file: /etc/ca.pem}")
        assert (caught.value.key, caught.value.reason) == (
            "tls",
            "expected a mapping like {ca_file: /etc/ca.pem}, got 'yes'",
        )

    def test_errors_named_section_dot_key(self) -> None:
        """An error inside the section names ``section.key``; a required key quotes its example."""
        import pytest

        from logfan.sinks.options import OptionError, OptionReader

        reader = OptionReader({"tls": {"verify": "maybe"}})
        tls = reader.section("tls", example="{ca_file: /etc/ca.pem}")
        assert tls is not None
        with pytest.raises(OptionError) as caught:
            tls.get_bool("verify")
        assert caught.value.key == "tls.verify"
        with pytest.raises(OptionError) as caught:
            tls.get_str("ca_file")
        assert (caught.value.key, caught.value.reason) == (
            "tls.ca_file",
            "this option is required, as in {ca_file: /etc/ca.pem}",
        )
        assert tls.error(None, "a client certificate needs both").key == "tls"

    def test_nested_sections(self) -> None:
        """A section of a section names the whole path."""
        import pytest

        from logfan.sinks.options import OptionError, OptionReader

        outer = OptionReader({"a": {"b": {"c": "x"}}}).section("a", example="{b: {}}")
        assert outer is not None
        inner = outer.section("b", example="{c: 1}")
        assert inner is not None
        with pytest.raises(OptionError) as caught:
            inner.get_int("c")
        assert caught.value.key == "a.b.c"

    def test_sink_section_errors_are_the_sinks(self) -> None:
        """In a sink's Options, a section's error is a SinkConfigError of that sink."""
        import pytest

        rotate = Options("all", {"rotate": {"keep": 0, "colour": "red"}}).section(
            "rotate", example="{keep: 3}"
        )
        assert rotate is not None
        with pytest.raises(SinkConfigError) as caught:
            rotate.get_int("keep", minimum=1)
        assert (caught.value.sink, caught.value.key) == ("all", "rotate.keep")
        with pytest.raises(SinkConfigError) as caught:
            rotate.finish()
        assert (caught.value.sink, caught.value.key) == ("all", "rotate.colour")
        assert caught.value.reason == "unknown option; valid options are: keep"


class TestFinish:
    """``finish``: keys no getter read are refused, the valid ones listed."""

    def test_all_read(self) -> None:
        """Every key read: nothing to say."""
        from logfan.sinks.options import OptionReader

        reader = OptionReader({"a": "x"})
        reader.get_str("a")
        reader.finish()

    def test_unknown_keys_refused_valid_ones_sorted(self) -> None:
        """The first unknown key (sorted) is named; the options read are listed sorted."""
        import pytest

        from logfan.sinks.options import OptionError, OptionReader

        reader = OptionReader({"zeta": 1, "colour": 2, "stream": "stdout", "path": "x"})
        reader.get_str("stream")
        reader.get_str("path")
        reader.get_bool("verbose", False)
        with pytest.raises(OptionError) as caught:
            reader.finish()
        assert caught.value.key == "colour"
        assert caught.value.reason == "unknown option; valid options are: path, stream, verbose"

    def test_common_sink_keys_accepted_not_listed(self) -> None:
        """A sink's Options take the keys the daemon reads itself, and do not list them."""
        import pytest

        common = {
            "type": "file",
            "max_retries": 3,
            "max_queue": 100,
            "max_line_bytes": 1000,
            "flush_interval": 0.5,
            "queue_type": "quorum",
            "scope": "per-host",
        }
        options = Options("all", {**common, "path": "/x"})
        options.get_str("path")
        options.finish()
        options = Options("all", {**common, "path": "/x", "colour": "red"})
        options.get_str("path")
        with pytest.raises(SinkConfigError) as caught:
            options.finish()
        assert (caught.value.sink, caught.value.key) == ("all", "colour")
        assert caught.value.reason == "unknown option; valid options are: path"


class TestOptionError:
    """``OptionError``: key and reason, as data and as text."""

    def test_with_key(self) -> None:
        """``key: reason``."""
        from logfan.sinks.options import OptionError

        error = OptionError("rotate.keep", "expected a whole number, got 'x'")
        assert (error.key, error.reason) == ("rotate.keep", "expected a whole number, got 'x'")
        assert str(error) == "rotate.keep: expected a whole number, got 'x'"

    def test_whole_section(self) -> None:
        """No key: the reason alone."""
        from logfan.sinks.options import OptionError

        error = OptionError(None, "a client certificate needs both cert_file and key_file")
        assert error.key is None
        assert str(error) == "a client certificate needs both cert_file and key_file"


class TestSinkConfigError:
    """``SinkConfigError``: an OptionError that names its sink."""

    def test_with_key(self) -> None:
        """sink, key and reason as data; the text names the sink and the option."""
        from logfan.sinks.options import OptionError

        error = SinkConfigError("all", "path", "this option is required")
        assert isinstance(error, OptionError)
        assert (error.sink, error.key, error.reason) == ("all", "path", "this option is required")
        assert str(error) == "sink 'all', option 'path': this option is required"

    def test_whole_sink(self) -> None:
        """No key: the text names the sink only."""
        error = SinkConfigError("all", None, "cannot open the file")
        assert error.key is None
        assert str(error) == "sink 'all': cannot open the file"

    def test_options_error_builds_one(self) -> None:
        """``Options.error`` builds a SinkConfigError for a sink's own checks."""
        error = Options("web", {}).error("address", "no such host")
        assert isinstance(error, SinkConfigError)
        assert (error.sink, error.key, error.reason) == ("web", "address", "no such host")


class TestFinishHint:
    """A misspelt key names the option it is closest to, the common sink keys included."""

    def test_a_common_sink_key(self) -> None:
        """``max_retires`` on a file sink: the valid options, then the one probably meant."""
        import pytest

        from logfan.sinks.options import Options, SinkConfigError

        options = Options("all", {"path": "/x", "max_retires": 3})
        options.get_str("path")
        with pytest.raises(SinkConfigError) as caught:
            options.finish()
        assert caught.value.reason == (
            "unknown option; valid options are: path; did you mean 'max_retries'?"
        )

    def test_a_key_of_the_section(self) -> None:
        """``exchnage`` in the broker section: did you mean 'exchange'?"""
        import pytest

        from logfan.sinks.options import OptionError, OptionReader

        reader = OptionReader({"exchnage": "logs"})
        reader.get_str("exchange", "logs")
        reader.get_str("url", "x")
        with pytest.raises(OptionError) as caught:
            reader.finish()
        assert caught.value.reason == (
            "unknown option; valid options are: exchange, url; did you mean 'exchange'?"
        )
