"""Line templates (`format:`) and the control-character policy."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logfan.sinks.base import Record
from logfan.sinks.template import PLACEHOLDERS, Template, control_filter


class TestTemplate:
    """`format:` substitutes the documented placeholders and nothing else."""

    def test_placeholders(self) -> None:
        """Every placeholder renders its record field; format specs work."""
        r = Record("msg", "ts", host="h", tag="t", severity="err", pid="42", msgid="m-0")
        out = Template("{timestamp}|{host}|{tag}|{pid}|{severity:>7}|{msgid}|{message}").render(r)
        assert out == "ts|h|t|42|    err|m-0|msg"

    @pytest.mark.parametrize(
        "text", ["{message.__class__}", "{message[0]}", "{nope}", "{message!r}", "{", "{0}"]
    )
    def test_rejects_anything_but_bare_placeholders(self, text: str) -> None:
        """Attribute, index, unknown names, conversions and broken braces are errors."""
        with pytest.raises(ValueError, match=r"\S"):
            Template(text)

    def test_control_policies(self) -> None:
        """escape makes controls visible, strip drops them, keep leaves them; TAB stays."""
        text = "a\nb\rc\x1b[1m\x00\td\x7f"
        assert control_filter("escape")(text) == "a\\nb\\rc\\x1b[1m\\x00\td\\x7f"
        assert control_filter("strip")(text) == "abc[1m\td"
        assert control_filter("keep")(text) == text

    def test_c1_controls_and_line_separators(self) -> None:
        """An 8-bit CSI (U+009B), NEL (U+0085) and U+2028 never reach a terminal raw."""
        text = "a\x9b2Jb\x85c\u2028d\u00e9"
        assert control_filter("escape")(text) == "a\\u009b2Jb\\u0085c\\u2028d\u00e9"
        assert control_filter("strip")(text) == "a2Jbcd\u00e9"


texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=200)
records = st.builds(Record, message=texts, timestamp=texts, host=texts, tag=texts, pid=texts)


class TestTemplateProperties:
    """Any record renders; escape keeps one line per record; any text is a template or not."""

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
