"""A batch of records kept by column, as the daemon hands it to a sink's ``write``.

The lines of one message share most of their metadata (an envelope has one host, tag and pid for
hundreds of lines), so the daemon keeps each message's lines as a :class:`Block`: a field is
either one string for every line or a sequence with one string per line. A :class:`Batch` is
the blocks of one write. It is a ``Sequence[Record]``, so a sink that iterates or indexes it
sees records (built on first use, once); the built-in sinks render it a block at a time
instead, without building a record per line (``Template.render_block``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Sequence
from itertools import compress, repeat
from typing import Any, overload

from logfan.sinks.base import Record

__all__ = ["FIELDS", "Batch", "Block", "Column", "Numbered"]

#: the fields of a record, in order.
FIELDS: tuple[str, ...] = Record._fields
#: builds a Record from a 7-tuple in C (the named tuple's own ``__new__`` is a Python function).
_new_record = functools.partial(tuple.__new__, Record)


class Numbered(Sequence[str]):
    """``prefix + str(n)`` for each ``n`` of ``numbers``: the msgids of an envelope's lines,
    made only when read."""

    __slots__ = ("numbers", "prefix")

    def __init__(self, prefix: str, numbers: Sequence[int]) -> None:
        self.prefix = prefix
        self.numbers = numbers

    def __len__(self) -> int:
        return len(self.numbers)

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> Numbered: ...

    def __getitem__(self, index: int | slice) -> str | Numbered:
        if isinstance(index, slice):
            return Numbered(self.prefix, self.numbers[index])
        return self.prefix + str(self.numbers[index])

    def __iter__(self) -> Iterator[str]:
        return map(self.prefix.__add__, map(str, self.numbers))

    def take(self, keep: Iterable[bool]) -> Numbered:
        """The msgids where ``keep`` is true."""
        return Numbered(self.prefix, list(compress(self.numbers, keep)))


#: one field of a block: the same string for every line, or one string per line.
Column = str | Sequence[str]


class Block:
    """Lines that arrived together: ``message`` has one string per line; every other field is
    one string shared by all lines, or a sequence as long as ``message``. ``clean`` says that
    no field holds a control character (the decoder knows it from the message's bytes), so
    that a sink can skip looking for one."""

    __slots__ = (*FIELDS, "clean")

    def __init__(  # noqa: PLR0917 - the fields of a Record, in its order
        self,
        message: Sequence[str],
        timestamp: Column,
        host: Column = "-",
        tag: Column = "-",
        severity: Column = "info",
        pid: Column = "-",
        msgid: Column = "-",
        *,
        clean: bool = False,
    ) -> None:
        self.clean = clean
        self.message = message
        self.timestamp = timestamp
        self.host = host
        self.tag = tag
        self.severity = severity
        self.pid = pid
        self.msgid = msgid

    @classmethod
    def of(cls, records: Sequence[Record]) -> Block:
        """The block holding ``records``, each field a column."""
        if not records:
            return cls((), ())
        columns: list[Sequence[str]] = list(zip(*records, strict=True))
        return cls(*columns)

    def __len__(self) -> int:
        return len(self.message)

    def __repr__(self) -> str:
        return f"Block({len(self)} lines)"

    def field(self, name: str) -> Column:
        """The field ``name``: a string (every line's) or one string per line."""
        value: Column = getattr(self, name)
        return value

    def column(self, name: str) -> Iterable[str]:
        """The field ``name``, one string per line."""
        value = self.field(name)
        return repeat(value, len(self.message)) if isinstance(value, str) else value

    def shared(self, *names: str) -> bool:
        """Whether each of the fields ``names`` is one string for every line."""
        return all(isinstance(getattr(self, name), str) for name in names)

    def records(self) -> list[Record]:
        """The block's lines as records."""
        return list(map(_new_record, zip(*(self.column(name) for name in FIELDS), strict=True)))

    def take(self, keep: Sequence[bool]) -> Block:
        """The lines where ``keep`` (one flag per line) is true, as a new block."""
        if all(keep):
            return self

        def pick(value: Column) -> Column:
            if isinstance(value, str):
                return value
            if isinstance(value, Numbered):
                return value.take(keep)
            return list(compress(value, keep))

        return Block(*(pick(self.field(name)) for name in FIELDS), clean=self.clean)

    def with_messages(self, messages: Sequence[str], *, clean: bool) -> Block:
        """The same lines with other ``messages`` (as many); ``clean`` if the block was and
        they hold no control character."""
        return Block(messages, *(self.field(name) for name in FIELDS[1:]), clean=clean)


class Batch(Sequence[Record]):
    """The records of one write, kept as blocks; indexing or iterating builds the records."""

    __slots__ = ("_records", "blocks")

    def __init__(self, blocks: Iterable[Block]) -> None:
        self.blocks: list[Block] = [block for block in blocks if len(block)]
        self._records: list[Record] | None = None

    @classmethod
    def of(cls, records: Sequence[Record]) -> Batch:
        """``records`` as a batch (itself if it is one already)."""
        return records if isinstance(records, Batch) else cls([Block.of(records)])

    def records(self) -> list[Record]:
        """Every record, in order (built once)."""
        if self._records is None:
            self._records = [r for block in self.blocks for r in block.records()]
        return self._records

    def __len__(self) -> int:
        return sum(map(len, self.blocks))

    @overload
    def __getitem__(self, index: int) -> Record: ...

    @overload
    def __getitem__(self, index: slice) -> list[Record]: ...

    def __getitem__(self, index: int | slice) -> Record | list[Record]:
        return self.records()[index]

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records())

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str | bytes):
            return self.records() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Batch({len(self)} records in {len(self.blocks)} blocks)"
