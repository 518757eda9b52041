"""Batches kept by column: every columnar path gives what the same records give one by one."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from logfan.daemon.consume.selection import Selection
from logfan.sinks.base import SEVERITIES, Record
from logfan.sinks.batch import Batch, Block, Numbered
from logfan.sinks.syslog.message import MessageBuilder
from logfan.sinks.template import CONTROL_POLICIES, PLACEHOLDERS, Template, render_lines

texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=30)
long_texts = st.one_of(
    texts,
    st.text(alphabet="aé€\x1b", min_size=300, max_size=700),  # cut, escaped, no LF
    st.text(alphabet="ab\n", min_size=300, max_size=700),
    st.text(
        alphabet="x", min_size=380, max_size=470
    ),  # fits a 480-byte message with or without its header
)
stamps = st.sampled_from(
    ["2026-11-27T06:12:59.123Z", "2026-11-27T06:12:59.124Z", "2026-11-27T07:00:00+01:00", "-", "x"]
)


@st.composite
def blocks(draw: Any) -> Block:
    """A block of up to 6 lines, each field shared or per line at random."""
    count = draw(st.integers(min_value=0, max_value=6))
    messages = draw(st.lists(long_texts, min_size=count, max_size=count))

    def column(values: Any) -> Any:
        if draw(st.booleans()):
            return draw(values)
        return draw(st.lists(values, min_size=count, max_size=count))

    msgid = draw(
        st.one_of(
            st.just("-"),
            st.builds(lambda n: Numbered("id-", list(range(n, n + count))), st.integers(0, 9)),
            st.lists(texts, min_size=count, max_size=count),
        )
    )
    block = Block(
        messages,
        column(stamps),
        column(texts),
        column(st.sampled_from(["app", "web", "db-1"])),
        column(st.sampled_from(SEVERITIES)),
        column(st.sampled_from(["-", "42", "7"])),
        msgid,
    )
    # clean: what the decoder says of a block without a control character in any field
    controls = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
    block.clean = draw(st.booleans()) and not any(
        controls.search(text) for record in block.records() for text in record
    )
    return block


batches = st.lists(blocks(), max_size=4).map(Batch)
templates = st.builds(
    lambda prefix, parts, sep: (
        prefix + sep.join(f"{{{p}:{s}}}" if s else f"{{{p}}}" for p, s in parts)
    ),
    st.sampled_from(["", "{{", "<"]),
    st.lists(
        st.tuples(st.sampled_from(PLACEHOLDERS), st.sampled_from(["", "", ">5", "<3", "*>4"])),
        max_size=4,
    ),
    st.sampled_from([" ", "", ": ", "}}"]),
)


class TestBlock:
    def test_records_take_and_numbered(self) -> None:
        """Shared fields repeat, columns differ per line, msgids number the original lines."""
        block = Block(
            ["a", "b", "c"], "ts", "h", ["t1", "t2", "t3"], "err", "9", Numbered("m-", range(3))
        )
        assert block.records()[1] == Record("b", "ts", "h", "t2", "err", "9", "m-1")
        kept = block.take([True, False, True])
        assert [r.msgid for r in kept.records()] == ["m-0", "m-2"]
        assert [r.tag for r in kept.records()] == ["t1", "t3"]
        assert kept.host == "h"

    def test_batch_is_a_sequence_of_records(self) -> None:
        """A sink that indexes, iterates, slices or compares a batch sees plain records."""
        records = [Record(str(n), "ts") for n in range(5)]
        batch = Batch([Block.of(records[:2]), Block.of([]), Block.of(records[2:])])
        assert len(batch) == 5
        assert len(batch.blocks) == 2  # the empty block is left out
        assert batch[3] == records[3]
        assert batch[1:3] == records[1:3]
        assert list(batch) == records
        assert batch == records
        assert Batch.of(batch) is batch


class TestColumnarPaths:
    @settings(max_examples=300, deadline=None)
    @given(block=blocks(), text=templates)
    def test_render_block_is_render_of_each(self, block: Block, text: str) -> None:
        """Shared fields filled in once give the lines each record gives alone."""
        template = Template(text)
        assert template.render_block(block) == [template.render(r) for r in block.records()]
        assert template.render_block(block) == template.render_block(block)  # a cached partial

    @settings(max_examples=200, deadline=None)
    @given(batch=batches, text=templates, policy=st.sampled_from(CONTROL_POLICIES))
    def test_render_lines_of_a_batch(self, batch: Batch, text: str, policy: str) -> None:
        """A batch renders to the text its records render to, control characters included."""
        template = Template(text)
        assert render_lines(template, batch, policy) == render_lines(template, list(batch), policy)

    @settings(max_examples=300, deadline=None)
    @given(
        batch=batches,
        text=st.sampled_from(["{message}", "{tag}: {message}", "{msgid} {message:>4}"]),
        protocol=st.sampled_from(["rfc5424", "rfc3164"]),
        limit=st.sampled_from([480, 2048]),
        hostname=st.sampled_from([None, "relay"]),
    )
    def test_syslog_messages_of_a_batch(
        self, batch: Batch, text: str, protocol: str, limit: int, hostname: str | None
    ) -> None:
        """build_many of a batch is build of each record, cut messages counted the same."""

        def builder() -> MessageBuilder:
            return MessageBuilder(
                protocol=protocol,
                facility=16,
                template=Template(text),
                max_message_bytes=limit,
                hostname=hostname,
            )

        by_block, by_record = builder(), builder()
        # RFC 3164 sends the time of sending for a time that does not parse: not comparable
        assume(protocol == "rfc5424" or all(r.timestamp not in ("-", "x") for r in batch))
        assert by_block.build_many(batch) == [by_record.build(r) for r in batch]
        assert by_block.truncated == by_record.truncated

    @settings(max_examples=300, deadline=None)
    @given(
        block=blocks(),
        low=st.sampled_from([None, *SEVERITIES]),
        tags=st.sampled_from([(), ("web*",), ("app", "db-?")]),
        match=st.sampled_from([None, "a", "^é", "€$"]),
        exclude=st.sampled_from([None, "b", "\\d"]),
    )
    def test_selection_of_a_block(
        self,
        block: Block,
        low: str | None,
        tags: tuple[str, ...],
        match: str | None,
        exclude: str | None,
    ) -> None:
        """A block's selected lines are the lines its records' selection takes."""
        selection = Selection(min_severity=low, tags=tags, match=match, exclude_match=exclude)
        assert selection.select_block(block).records() == selection.select(block.records())
