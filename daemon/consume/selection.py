"""A sink's ``select:``: which of the lines it takes from its queue it writes.

Every sink still receives every line; its consumer acknowledges a line it does not select and
counts it as filtered. The checks cost bounded time per line: severities are compared as
numbers, tag globs are compiled once (and their verdicts cached per tag), and ``match`` /
``exclude_match`` are RE2 expressions (linear time, no backtracking, so ``(a+)+$`` cannot stall
a worker), searched once per batch rather than once per line.
"""

from __future__ import annotations

import bisect
import dataclasses
import fnmatch
import re
from collections.abc import Callable, Sequence
from typing import Any

import re2

from logfan.sinks.base import SEVERITIES, Record, normalize_severity
from logfan.sinks.batch import Block
from logfan.sinks.options import OptionReader

__all__ = ["SELECT_KEYS", "Selection", "parse_selection"]

SELECT_KEYS = ("min_severity", "max_severity", "tags", "exclude_tags", "match", "exclude_match")
#: tag verdicts kept per selection; the cache is emptied when it grows past this.
_TAG_CACHE = 4096
_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}


def _re2_options() -> Any:
    options = re2.Options()
    options.log_errors = False  # RE2 would print its own copy of the error on stderr
    options.never_nl = True  # a match never spans two lines of a batch
    return options


def _compile(pattern: str) -> Any:
    """The RE2 program for ``pattern``, where ``^`` and ``$`` match at each line's ends."""
    try:
        re2.compile(pattern.encode(), _re2_options())  # its errors quote the pattern as given
        return re2.compile(f"(?m:{pattern})".encode(), _re2_options())
    except re2.error as exc:
        detail = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        raise ValueError(f"not a valid RE2 expression {pattern!r}: {detail}") from None


def _span_matcher(program: Any) -> Callable[[bytes], bool] | None:
    """A per-line test that calls RE2's own ``Match`` directly, without the Python generator
    and match object the public ``search`` builds (a fifth of the time); None if this
    google-re2 does not have it as expected."""
    try:
        match = program._regexp.Match  # the binding under the public API, checked below
        anchor = re2._re2.RE2.Anchor.UNANCHORED
        if match(anchor, b"", 0, 0)[0] not in ((-1, -1), (0, 0)):
            return None
    except Exception:  # noqa: BLE001 - any surprise: the public path
        return None

    def found(line: bytes) -> bool:
        return bool(match(anchor, line, 0, len(line))[0][0] >= 0)

    return found


class BatchMatcher:
    """One RE2 expression, searched over a whole batch at once."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self._program = _compile(pattern)
        # \A and \z mean the text's ends: per line they need the text to be one line.
        self._per_line = "\\A" in pattern or "\\z" in pattern
        self._found = _span_matcher(self._program)

    def hits(self, messages: Sequence[str]) -> list[bool]:
        """Which of ``messages`` the expression finds a match in."""
        search = self._program.search
        if self._per_line:
            return [search(_utf8(m)) is not None for m in messages]
        text = "\n".join(messages)
        if text.count("\n") != len(messages) - 1:  # a message holds a newline of its own
            return [search(_utf8(m)) is not None for m in messages]
        data = _utf8(text)
        first = search(data)
        if first is None:  # the usual case for an exclude: one search for the whole batch
            return [False] * len(messages)
        line = data.count(b"\n", 0, first.start())
        if self._found is not None:  # from the first hit on, each line on its own
            hits = [False] * line
            hits += map(self._found, data.split(b"\n")[line:])
            return hits
        return self._hits_after(data, line, len(messages))

    def _hits_after(self, data: bytes, line: int, count: int) -> list[bool]:
        """The public path: a search from each line after a hit, through the batch."""
        search = self._program.search
        starts = [0]
        at = data.find(b"\n")
        while at >= 0:
            starts.append(at + 1)
            at = data.find(b"\n", at + 1)
        hits = [False] * count
        while True:
            hits[line] = True
            if line + 1 >= len(starts):
                return hits
            found = search(data, starts[line + 1])  # the rest of this line is decided
            if found is None:
                return hits
            line = bisect.bisect_right(starts, found.start()) - 1


def _utf8(text: str) -> bytes:
    """What RE2 searches: UTF-8 (a lone surrogate, which UTF-8 cannot hold, as U+FFFD)."""
    return text.encode("utf-8", "replace")


@dataclasses.dataclass(frozen=True)
class Selection:
    """The lines a sink writes: all conditions given must hold.

    ``min_severity: err`` takes err and everything more severe (crit, alert, emerg), like
    rsyslog's ``*.err``; ``max_severity: notice`` takes notice and everything less severe.
    ``tags`` (globs) takes lines whose tag matches one of them; ``exclude_tags`` drops those
    matching one. ``match`` takes lines in which the RE2 expression finds a match;
    ``exclude_match`` drops them.
    """

    min_severity: str | None = None
    max_severity: str | None = None
    tags: tuple[str, ...] = ()
    exclude_tags: tuple[str, ...] = ()
    match: str | None = None
    exclude_match: str | None = None
    _state: _Compiled = dataclasses.field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_state", _Compiled(self))

    def select(self, records: list[Record]) -> list[Record]:
        """The records this selection takes, in order (``records`` itself if it takes all)."""
        return self._state.select(records)

    def select_block(self, block: Block) -> Block:
        """The lines of ``block`` this selection takes (``block`` itself if it takes all)."""
        return self._state.select_block(block)


class _Compiled:
    """What a selection needs at run time, built once."""

    def __init__(self, selection: Selection) -> None:
        low = _RANK[selection.min_severity] if selection.min_severity else len(SEVERITIES)
        high = _RANK[selection.max_severity] if selection.max_severity else 0
        self._severities: frozenset[str] | None = None
        if selection.min_severity or selection.max_severity:
            self._severities = frozenset(
                name for name, rank in _RANK.items() if high <= rank <= low
            )
        self._tags = self._globs(selection.tags)
        self._exclude_tags = self._globs(selection.exclude_tags)
        self._tag_verdicts: dict[str, bool] = {}
        self._match = BatchMatcher(selection.match) if selection.match is not None else None
        self._exclude = (
            BatchMatcher(selection.exclude_match) if selection.exclude_match is not None else None
        )
        self._takes_all = not (
            self._severities is not None or self._tags or self._exclude_tags
        ) and not (self._match or self._exclude)

    @staticmethod
    def _globs(globs: tuple[str, ...]) -> re.Pattern[str] | None:
        if not globs:
            return None
        return re.compile("|".join(f"(?:{fnmatch.translate(g)})" for g in globs))

    def _tag_ok(self, tag: str) -> bool:
        verdict = self._tag_verdicts.get(tag)
        if verdict is None:
            verdict = (self._tags is None or self._tags.match(tag) is not None) and (
                self._exclude_tags is None or self._exclude_tags.match(tag) is None
            )
            if len(self._tag_verdicts) >= _TAG_CACHE:
                self._tag_verdicts.clear()
            self._tag_verdicts[tag] = verdict
        return verdict

    def select(self, records: list[Record]) -> list[Record]:
        if self._takes_all or not records:
            return records
        return self.select_block(Block.of(records)).records()

    def select_block(self, block: Block) -> Block:
        if self._takes_all or not len(block):
            return block
        if self._severities is not None:
            block = self._keep(block, "severity", self._severities.__contains__)
        if self._tags is not None or self._exclude_tags is not None:
            block = self._keep(block, "tag", self._tag_ok)
        if self._match is not None and len(block):
            block = block.take(self._match.hits(block.message))
        if self._exclude is not None and len(block):
            block = block.take([not hit for hit in self._exclude.hits(block.message)])
        return block

    @staticmethod
    def _keep(block: Block, name: str, test: Callable[[str], bool]) -> Block:
        """The lines of ``block`` whose field ``name`` passes ``test`` (once if they share it)."""
        value = block.field(name)
        if isinstance(value, str):
            return block if test(value) else block.take([False] * len(block))
        return block.take(list(map(test, value)))


def _severity(section: OptionReader, key: str) -> str | None:
    value = section.get_raw(key)
    if value is None:
        return None
    name = normalize_severity(str(value)) if isinstance(value, str | int) else None
    if name is None or isinstance(value, bool):
        raise section.error(
            key, f"expected a severity ({', '.join(SEVERITIES)}, or 0-7), got {value!r}"
        )
    return name


def _globs(section: OptionReader, key: str) -> tuple[str, ...]:
    value = section.get_raw(key)
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise section.error(key, f"expected a tag glob or a list of them, got {value!r}")
    return tuple(value)


def _pattern(section: OptionReader, key: str) -> str | None:
    value = section.get_raw(key)
    if value is None:
        return None
    if isinstance(value, list) and value and all(isinstance(v, str) and v for v in value):
        value = "|".join(f"(?:{v})" for v in value)
    if not isinstance(value, str) or not value:
        raise section.error(key, f"expected an RE2 expression or a list of them, got {value!r}")
    try:
        _compile(value)
    except ValueError as exc:
        raise section.error(key, str(exc)) from None
    return value


def parse_selection(section: OptionReader | None) -> Selection | None:
    """Read a ``select:`` section (errors name ``select.KEY``); None when absent or empty."""
    if section is None:
        return None
    selection = Selection(
        min_severity=_severity(section, "min_severity"),
        max_severity=_severity(section, "max_severity"),
        tags=_globs(section, "tags"),
        exclude_tags=_globs(section, "exclude_tags"),
        match=_pattern(section, "match"),
        exclude_match=_pattern(section, "exclude_match"),
    )
    section.finish()
    low, high = selection.min_severity, selection.max_severity
    if low and high and _RANK[high] > _RANK[low]:
        raise section.error(
            "max_severity",
            f"{high} is less severe than min_severity {low}: no line would be selected",
        )
    return selection if selection != Selection() else None
