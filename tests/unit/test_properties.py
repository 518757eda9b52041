"""Property-based tests: arbitrary input never raises anything but the documented errors."""

from __future__ import annotations

import contextlib
import string
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logfan.daemon.config.loader import load_config
from logfan.daemon.envelope import CONTENT_TYPE, decode, encode
from logfan.daemon.errors import ConfigError
from logfan.sinks.base import Options, Record, SinkConfigError
from logfan.sinks.console import ConsoleSink
from logfan.sinks.file import FileSink
from logfan.sinks.template import PLACEHOLDERS, Template, control_filter

texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=200)
records = st.builds(Record, message=texts, timestamp=texts, host=texts, tag=texts, pid=texts)
yaml_ish = st.text(alphabet=string.printable + "{}[]:&*!|>-'\"#%@`é\x00", max_size=400)


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


class TestEnvelopeProperties:
    """decode never raises; encode/decode round-trips."""

    @given(body=st.binary(max_size=500), envelope=st.booleans())
    def test_decode_never_raises(self, body: bytes, envelope: bool) -> None:
        """Any bytes, with or without logfan's content type: a list of records."""
        out = decode(body, CONTENT_TYPE if envelope else None, {})
        assert isinstance(out, list)
        assert out

    @given(lines=st.lists(st.tuples(texts.filter(bool), texts), min_size=1, max_size=20))
    def test_round_trip(self, lines: list[tuple[str, str]]) -> None:
        """What the emitter encodes, the daemon decodes to the same lines."""
        body = encode(lines, msg_id="m", host="h", tag="t", pid=1, severity="info")
        got = decode(body, CONTENT_TYPE, {})
        assert [(r.timestamp, r.message) for r in got] == lines

    @given(
        lines=st.lists(
            st.one_of(
                st.tuples(texts.filter(bool), texts),
                st.tuples(texts.filter(bool), texts, st.sampled_from(["err", "debug", "7"])),
            ),
            min_size=1,
            max_size=20,
        ),
        msg_id=st.sampled_from(["m", "-"]),
    )
    def test_fast_path_agrees_with_the_general_one(
        self, lines: list[tuple[str, ...]], msg_id: str
    ) -> None:
        """An envelope of plain pairs (decoded without a loop per line) gives the same records
        as the line-by-line path, which a per-line severity at the end forces."""
        meta = {"msg_id": msg_id, "host": "h", "tag": "t", "pid": 1, "severity": "info"}
        got = decode(encode(lines, **meta), CONTENT_TYPE, {})  # type: ignore[arg-type]
        forced = decode(encode([*lines, ("t", "x", "info")], **meta), CONTENT_TYPE, {})  # type: ignore[arg-type]
        assert got == forced[:-1]
        assert all(type(r) is Record for r in got)


class TestFormatterProperties:
    """Every built-in sink's formatter: any record renders, escape keeps one line per record."""

    @given(record=records, fmt=st.lists(st.sampled_from(PLACEHOLDERS), min_size=1, max_size=4))
    def test_template_and_escape(self, record: Record, fmt: list[str]) -> None:
        """Rendered with escape, no line break and no ESC survive."""
        template = Template(" ".join("{" + p + "}" for p in fmt))
        line = template.render(record, control_filter("escape"))
        assert "\n" not in line
        assert "\r" not in line
        assert "\x1b" not in line

    @given(
        batch=st.lists(records, max_size=10),
        fmt=st.lists(st.sampled_from(PLACEHOLDERS), max_size=4),
    )
    def test_render_many_is_render_of_each(self, batch: list[Record], fmt: list[str]) -> None:
        """A batch rendered at once is each record rendered alone (no, one or many fields)."""
        template = Template("<" + "|".join("{" + p + "}" for p in fmt) + ">")
        assert template.render_many(batch) == [template.render(r) for r in batch]

    @given(text=texts)
    def test_template_text_is_accepted_or_refused(self, text: str) -> None:
        """Any format string: a Template or a ValueError, never another exception."""
        with contextlib.suppress(ValueError):
            Template(text)

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
