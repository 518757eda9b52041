"""Line templates (``format:``) compiled once per sink, and the control-character policy."""

from __future__ import annotations

import itertools
import operator
import re
import string
from collections.abc import Callable, Iterable

from logfan.sinks.base import Options, Record
from logfan.sinks.batch import Batch, Block

__all__ = [
    "CONTROL_POLICIES",
    "MAX_WIDTH",
    "PLACEHOLDERS",
    "Template",
    "control_filter",
    "join_lines",
    "template_option",
]

#: the placeholders a ``format`` may use, each a field of :class:`Record`.
PLACEHOLDERS: tuple[str, ...] = ("message", "timestamp", "host", "tag", "severity", "pid", "msgid")

#: what a sink does with control characters inside a line (CR, LF, ESC, NUL, ...).
CONTROL_POLICIES: tuple[str, ...] = ("escape", "strip", "keep")

_C0: dict[int, str | None] = {c: f"\\x{c:02x}" for c in range(0x20)}
_C0.update({0x09: "\t", 0x0A: "\\n", 0x0D: "\\r"})
_C0[0x7F] = "\\x7f"
# C1 controls (U+0080-U+009F: U+009B is an 8-bit CSI some terminals obey, U+0085 a line break)
# and the Unicode line and paragraph separators are escaped too.
_C0.update({c: f"\\u{c:04x}" for c in [*range(0x80, 0xA0), 0x2028, 0x2029]})
#: the widest a placeholder may be padded (``{tag:<20}``); wider would bloat every line.
MAX_WIDTH = 1024
# A format spec: [[fill]align][sign][z][#][0][width]...; group 1 is the width.
_WIDTH = re.compile(r"(?s:.?[<>=^])?[-+ ]?z?#?0?(\d*)")
_ESCAPE: dict[int, str | None] = str.maketrans(_C0)
_STRIPPED: dict[int, str | None] = {c: None for c in _C0 if c != 0x09}
_STRIP: dict[int, str | None] = str.maketrans(_STRIPPED)
# Most lines hold no control character: a C-speed search first spares them str.translate.
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
# The same without LF, for text whose lines are joined by LF (counted apart).
_CONTROL_BUT_LF = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
#: partial templates kept per template (one per set of values its lines share)
_PARTIALS = 256


def control_filter(policy: str) -> Callable[[str], str]:
    """Return the function applying ``policy`` to one line's text.

    ``escape`` writes C0 controls and DEL as ``\\n``, ``\\r``, ``\\xNN``, and C1 controls and
    U+2028/U+2029 as ``\\uNNNN``; TAB stays (backslashes are left alone: Windows paths stay
    readable). ``strip`` removes them; ``keep`` leaves them.
    """
    tables: dict[str, dict[int, str | None]] = {"escape": _ESCAPE, "strip": _STRIP}
    table = tables.get(policy)
    if table is None:
        return lambda text: text
    search = _CONTROL.search
    return lambda text: text.translate(table) if search(text) else text


def render_lines(template: Template, records: Iterable[Record], policy: str) -> str:
    """The batch as text, one line per record, each ending in LF, with ``policy`` applied.

    A :class:`Batch` is rendered a block at a time, without a record per line. Most batches hold
    no control character at all: one C-speed scan of the whole text finds that out, and only a
    batch that has one is filtered line by line.
    """
    if isinstance(records, Batch):
        lines: list[str] = []
        for block in records.blocks:
            lines += template.render_block(block)
    else:
        lines = template.render_many(records)
    if not lines:
        return ""
    return join_lines(lines, policy, clean=template.clean and _all_clean(records)) + "\n"


def join_lines(lines: list[str], policy: str, *, clean: bool = False) -> str:
    """``lines`` joined by LF with ``policy`` applied, so that each stays one line. One C-speed
    scan of the joined text finds out whether any line needs it (none does, mostly), and none is
    made when ``clean`` says they hold no control character."""
    text = "\n".join(lines)
    if (
        policy != "keep"
        and not clean
        and (text.count("\n") != len(lines) - 1 or _CONTROL_BUT_LF.search(text) is not None)
    ):
        filter_ = control_filter(policy)
        text = "\n".join([filter_(line) for line in lines])
    return text


def _all_clean(records: Iterable[Record]) -> bool:
    """Whether ``records`` is a batch whose every block is known to hold no control character."""
    return isinstance(records, Batch) and all(block.clean for block in records.blocks)


class Template:
    """A ``str.format``-style template restricted to :data:`PLACEHOLDERS`.

    Only bare names are allowed: no attribute or index access, no conversions, so a template can
    never reach into Python objects. Raises ``ValueError`` with the reason for a bad template.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        fields: list[str] = []
        pattern: list[str] = []
        try:
            parsed = list(string.Formatter().parse(text))
        except ValueError as exc:
            raise ValueError(f"cannot parse {text!r}: {exc}") from None
        for literal, field, spec, conversion in parsed:
            pattern.append(literal.replace("{", "{{").replace("}", "}}"))
            if field is None:
                continue
            if field not in PLACEHOLDERS:
                raise ValueError(
                    f"unknown placeholder {{{field}}} in {text!r}; "
                    f"valid placeholders are: {', '.join('{' + p + '}' for p in PLACEHOLDERS)}"
                )
            if conversion is not None or (spec and "{" in spec):
                raise ValueError(f"placeholder {{{field}}} in {text!r} takes no conversion")
            if spec:
                width = _WIDTH.match(spec)
                if width and width.group(1) and int(width.group(1)) > MAX_WIDTH:
                    raise ValueError(
                        f"width {width.group(1)} in {{{field}:{spec}}} is over {MAX_WIDTH}: "
                        "every line would be padded to it"
                    )
                try:
                    format("", spec)
                except ValueError as exc:
                    raise ValueError(f"bad format spec {spec!r} in {text!r}: {exc}") from None
            pattern.append(f"{{{len(fields)}:{spec}}}" if spec else f"{{{len(fields)}}}")
            fields.append(field)
        # Compiled once: positional str.format over the fields, fetched by one attrgetter.
        self._parsed = parsed
        #: whether the template's own text (literals, fill characters) holds no control character
        self.clean = _CONTROL.search(text) is None
        self._partials: dict[tuple[str | None, ...], _Partial] = {}
        self._pattern = "".join(pattern)
        self._fields = tuple(fields)
        self._get = operator.attrgetter(*fields) if fields else None

    def render(self, record: Record, clean: Callable[[str], str] | None = None) -> str:
        """The line for ``record``; ``clean`` (a control-character policy) is applied to it."""
        if self._get is None:
            line = self._pattern.format()
        elif len(self._fields) == 1:
            line = self._pattern.format(self._get(record))
        else:
            line = self._pattern.format(*self._get(record))
        return clean(line) if clean is not None else line

    def render_many(self, records: Iterable[Record]) -> list[str]:
        """The lines for ``records``, no policy applied; the loop runs in C, not per record."""
        if self._get is None:
            return [self._pattern.format() for _ in records]
        if len(self._fields) == 1:
            return list(map(self._pattern.format, map(self._get, records)))
        return list(itertools.starmap(self._pattern.format, map(self._get, records)))

    def render_block(self, block: Block) -> list[str]:
        """The lines of ``block``, no policy applied. The fields its lines share are filled in
        once (a partial template per set of shared values); the loop over lines runs in C."""
        key = tuple(
            value if isinstance(value := block.field(name), str) else None for name in self._fields
        )
        partial = self._partials.get(key)
        if partial is None:
            partial = self._partial(key)
        return partial.render(block)

    def _partial(self, shared: tuple[str | None, ...]) -> _Partial:
        """The template with each shared field filled in (``shared``: its value, or None for a
        field whose lines differ)."""
        pattern: list[str] = []
        varying: list[str] = []
        #: the literal text before each varying field and after the last, where none has a spec
        literals: list[str] | None = [""]
        fields = iter(shared)
        for literal, field, spec, _ in self._parsed:
            pattern.append(literal.replace("{", "{{").replace("}", "}}"))
            if literals is not None:
                literals[-1] += literal
            if field is None:
                continue
            value = next(fields)
            if value is not None:
                text = format(value, spec or "")
                pattern.append(text.replace("{", "{{").replace("}", "}}"))
                if literals is not None:
                    literals[-1] += text
            else:
                pattern.append(f"{{{len(varying)}:{spec}}}" if spec else f"{{{len(varying)}}}")
                varying.append(field)
                literals = None if spec or literals is None else [*literals, ""]
        partial = _Partial("".join(pattern), tuple(varying), literals)
        if len(self._partials) >= _PARTIALS:
            self._partials.clear()
        self._partials[shared] = partial
        return partial


class _Partial:
    """A template with the values a block's lines share filled in: ``pattern`` for
    ``str.format`` over the ``varying`` fields. ``literals`` (the text around the varying
    fields, when none has a format spec) lets the two commonest shapes skip ``str.format``:
    ``{message}`` alone is the messages themselves, ``{timestamp} host tag: {message}`` one
    ``str.join`` per line."""

    __slots__ = ("_join", "pattern", "varying")

    def __init__(self, pattern: str, varying: tuple[str, ...], literals: list[str] | None) -> None:
        self.pattern = pattern
        self.varying = varying
        self._join: str | None = None
        if literals is not None and len(varying) in (1, 2) and literals[0] == literals[-1] == "":
            self._join = literals[1] if len(varying) == 2 else ""

    def render(self, block: Block) -> list[str]:
        varying = self.varying
        if not varying:
            return [self.pattern.format()] * len(block)
        if self._join == "" and len(varying) == 1:
            return list(block.field(varying[0]))
        if self._join is not None:
            pairs = zip(block.field(varying[0]), block.field(varying[1]), strict=True)
            return list(map(self._join.join, pairs))
        if len(varying) == 1:
            return list(map(self.pattern.format, block.field(varying[0])))
        return list(map(self.pattern.format, *(block.column(name) for name in varying)))


def template_option(options: Options, default: str) -> Template:
    """Read and compile the sink's ``format`` option."""
    text = options.get_str("format", default)
    try:
        return Template(text)
    except ValueError as exc:
        raise options.error("format", str(exc)) from None
