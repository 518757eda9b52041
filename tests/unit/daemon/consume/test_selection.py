"""A sink's ``select:``: severities, tag globs and RE2 expressions, and how check refuses them."""

from __future__ import annotations

import textwrap
import threading
from pathlib import Path

import pytest
import re2
from hypothesis import given
from hypothesis import strategies as st

from logfan.daemon.config.loader import load_config
from logfan.daemon.consume.selection import BatchMatcher, Selection
from logfan.daemon.errors import ConfigError
from logfan.sinks.base import SEVERITIES, Record


def records(*severities: str, tag: str = "app") -> list[Record]:
    return [Record(f"line {i}", "t", tag=tag, severity=s) for i, s in enumerate(severities)]


class TestSeverity:
    def test_min_severity_takes_it_and_worse(self) -> None:
        taken = Selection(min_severity="err").select(records(*SEVERITIES))
        assert [r.severity for r in taken] == ["emerg", "alert", "crit", "err"]

    def test_max_severity_takes_it_and_milder(self) -> None:
        taken = Selection(max_severity="notice").select(records(*SEVERITIES))
        assert [r.severity for r in taken] == ["notice", "info", "debug"]

    def test_both_make_a_band(self) -> None:
        taken = Selection(min_severity="warning", max_severity="err").select(records(*SEVERITIES))
        assert [r.severity for r in taken] == ["err", "warning"]

    def test_no_condition_takes_the_same_list(self) -> None:
        batch = records("info", "err")
        assert Selection().select(batch) is batch


class TestTags:
    def test_globs(self) -> None:
        batch = [Record("m", "t", tag=t) for t in ("nginx", "nginx-access", "cron", "kernel")]
        taken = Selection(tags=("nginx*", "cron")).select(batch)
        assert [r.tag for r in taken] == ["nginx", "nginx-access", "cron"]

    def test_exclude_tags(self) -> None:
        batch = [Record("m", "t", tag=t) for t in ("nginx", "nginx-access", "cron")]
        taken = Selection(exclude_tags=("*-access",)).select(batch)
        assert [r.tag for r in taken] == ["nginx", "cron"]

    def test_a_glob_is_whole_tag(self) -> None:
        batch = [Record("m", "t", tag=t) for t in ("cron", "anacron", "crond")]
        assert [r.tag for r in Selection(tags=("cron",)).select(batch)] == ["cron"]


class TestMatch:
    def test_match_and_exclude(self) -> None:
        batch = [Record(m, "t") for m in ("disk timeout", "ok", "timeout (retried)", "refused")]
        selection = Selection(match="timeout|refused", exclude_match=r"\(retried\)")
        assert [r.message for r in selection.select(batch)] == ["disk timeout", "refused"]

    def test_anchors_are_per_line(self) -> None:
        batch = [Record(m, "t") for m in ("GET /", "x GET /", "GET", "POST")]
        assert [r.message for r in Selection(match="^GET").select(batch)] == ["GET /", "GET"]
        assert [r.message for r in Selection(match="T$").select(batch)] == ["GET", "POST"]

    def test_a_match_never_spans_two_lines(self) -> None:
        batch = [Record(m, "t") for m in ("a", "b", "a b")]
        assert [r.message for r in Selection(match=r"a\s*b").select(batch)] == ["a b"]
        assert [r.message for r in Selection(match="a.*b").select(batch)] == ["a b"]

    def test_message_with_its_own_newline(self) -> None:
        batch = [Record("first\nGET /", "t"), Record("GET", "t")]
        assert len(Selection(match="^GET$").select(batch)) == 1

    @given(
        st.lists(st.text(alphabet="ab\n! é\ud800", max_size=12), min_size=1, max_size=30),
        st.sampled_from(["a+b", "^a", "b$", "a.b", "(a|b)!", r"\Aa", "^$", "x", "é$", "\ufffd"]),
        st.booleans(),
    )
    def test_a_batch_decides_as_lines_one_by_one_would(
        self, messages: list[str], pattern: str, public: bool
    ) -> None:
        """The same verdicts as each message searched alone, whether RE2 is called through
        its public API or directly (a lone surrogate is searched as U+FFFD)."""
        options = re2.Options()
        options.never_nl = True
        one = re2.compile(f"(?m:{pattern})".encode(), options)
        expected = [one.search(m.encode("utf-8", "replace")) is not None for m in messages]
        matcher = BatchMatcher(pattern)
        if public:
            matcher._found = None
        else:  # the google-re2 installed has the binding the fast path calls
            assert matcher._found is not None
        assert matcher.hits(messages) == expected

    def test_catastrophic_pattern_is_linear(self) -> None:
        """``(a+)+$`` backtracks exponentially in Python's re; RE2 takes it in linear time."""
        line = "a" * 65536 + "!"
        done: list[list[bool]] = []
        worker = threading.Thread(
            target=lambda: done.append(BatchMatcher("(a+)+$").hits([line] * 10)), daemon=True
        )
        worker.start()
        worker.join(60)  # a bound on a hang, not a timing: RE2 takes well under a second
        assert done == [[False] * 10]


def config(tmp_path: Path, select: str, fmt: str = "") -> Path:
    path = tmp_path / "logfan.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        broker: {{url: "filesystem://{tmp_path}/spool"}}
        sinks:
          errors:
            type: file
            path: {tmp_path}/errors.log
        """)
        + textwrap.indent(select, "    ")
        + (f"    format: {fmt!r}\n" if fmt else "")
    )
    return path


class TestCheck:
    def test_loaded(self, tmp_path: Path) -> None:
        text = "select:\n  min_severity: 3\n  tags: [nginx*]\n  match: [timeout, refused]\n"
        sink = load_config(str(config(tmp_path, text))).sinks[0]
        assert sink.select == Selection(
            min_severity="err", tags=("nginx*",), match="(?:timeout)|(?:refused)"
        )

    @pytest.mark.parametrize(
        ("select", "key", "reason"),
        [
            ("select:\n  match: '(a)\\1'\n", "select.match", "not a valid RE2 expression"),
            ("select:\n  exclude_match: '(?=x)'\n", "select.exclude_match", "RE2"),
            ("select:\n  match: '['\n", "select.match", "missing ]"),
            ("select:\n  min_severity: errr\n", "select.min_severity", "expected a severity"),
            ("select:\n  max_severity: true\n", "select.max_severity", "expected a severity"),
            ("select:\n  tags: 5\n", "select.tags", "expected a tag glob"),
            ("select:\n  macth: x\n", "select.macth", "did you mean 'match'"),
            (
                "select:\n  min_severity: err\n  max_severity: info\n",
                "select.max_severity",
                "no line would be selected",
            ),
            ("select: err\n", "select", "expected a mapping"),
        ],
    )
    def test_refused_with_line_and_key(
        self, tmp_path: Path, select: str, key: str, reason: str
    ) -> None:
        with pytest.raises(ConfigError) as caught:
            load_config(str(config(tmp_path, select)))
        assert f"sinks.errors.{key}: " in str(caught.value)
        assert reason in str(caught.value)
        assert f"{tmp_path}/logfan.yaml:" in str(caught.value)

    def test_format_width_in_the_millions_is_refused(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match=r"sinks\.errors\.format: width 999999999"):
            load_config(str(config(tmp_path, "", fmt="{message:>999999999}")))

    def test_format_width_of_a_column_is_fine(self, tmp_path: Path) -> None:
        load_config(str(config(tmp_path, "", fmt="{tag:<20} {message}")))
