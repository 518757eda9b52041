"""YAML read safely into plain values, remembering the line of every key for error messages."""

from __future__ import annotations

from typing import Any

import yaml

from logfan.daemon.errors import ConfigError

MAX_BYTES = 1 << 20
MAX_NODES = 100_000
MAX_DEPTH = 64

KeyPath = tuple[str, ...]
#: the only collection tags a config may use (the safe loader's own; no python/* objects).
_PLAIN = frozenset({"tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"})


class SourceInt(int):
    """An int that remembers how it was written (``0640`` and ``640`` differ for file modes)."""

    source_text: str

    def __new__(cls, value: int, source_text: str) -> SourceInt:
        obj = super().__new__(cls, value)
        obj.source_text = source_text
        return obj


class Document:
    """A parsed YAML file: its plain value and the line (1-based) of each key path."""

    def __init__(self, path: str, value: Any, lines: dict[KeyPath, int]) -> None:
        self.path = path
        self.value = value
        self.lines = lines

    def line(self, key: KeyPath) -> int | None:
        """The line of ``key``, or of its nearest enclosing key that has one."""
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return self.lines.get(())

    def error(self, key: KeyPath, reason: str) -> ConfigError:
        """A ConfigError for ``key`` with its file and line."""
        return ConfigError(self.path, self.line(key), ".".join(key) or None, reason)


class _Builder:
    def __init__(self, path: str) -> None:
        self.path = path
        self.lines: dict[KeyPath, int] = {}
        self.nodes = 0
        self._scalars = yaml.SafeLoader("")

    def fail(self, node: yaml.Node, key: KeyPath, reason: str) -> ConfigError:
        return ConfigError(self.path, node.start_mark.line + 1, ".".join(key) or None, reason)

    def build(self, node: yaml.Node, key: KeyPath, depth: int) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise self.fail(
                node, key, f"more than {MAX_NODES} values (an alias bomb?); refusing to load"
            )
        if depth > MAX_DEPTH:
            raise self.fail(node, key, f"nested more than {MAX_DEPTH} levels deep")
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode) and node.tag not in _PLAIN:
            raise self.fail(node, key, f"unsupported YAML tag {node.tag!r}")
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for k_node, v_node in node.value:
                if k_node.tag == "tag:yaml.org,2002:merge":
                    raise self.fail(k_node, key, "merge keys (<<) are not supported")
                k = self.build(k_node, key, depth + 1)
                if not isinstance(k, str):
                    k = str(k)
                sub = (*key, k)
                if k in out:
                    raise self.fail(k_node, sub, "duplicate key")
                self.lines[sub] = k_node.start_mark.line + 1
                out[k] = self.build(v_node, sub, depth + 1)
            return out
        if isinstance(node, yaml.SequenceNode):
            items = []
            for i, item in enumerate(node.value):
                self.lines[(*key, str(i))] = item.start_mark.line + 1
                items.append(self.build(item, (*key, str(i)), depth + 1))
            return items
        return self._scalar(node, key)

    def _scalar(self, node: yaml.Node, key: KeyPath) -> Any:
        try:
            value = self._scalars.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError:
            raise self.fail(node, key, f"unsupported YAML tag {node.tag!r}") from None
        except (yaml.YAMLError, ValueError):
            raise self.fail(node, key, f"cannot read {node.value!r} as {node.tag}") from None
        if isinstance(value, int) and not isinstance(value, bool):
            return SourceInt(value, str(node.value))
        return value


def load_yaml(path: str) -> Document:
    """Read ``path`` with the safe loader only; sizes, depth and alias expansion are bounded."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(
            path, None, None, f"cannot read the config file: {exc.strerror}"
        ) from None
    if len(raw) > MAX_BYTES:
        raise ConfigError(path, None, None, f"the file is larger than {MAX_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(path, None, None, f"not UTF-8 text (byte {exc.start})") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        reason = " ".join(p for p in (exc.context, exc.problem) if p)
        raise ConfigError(path, line, None, f"YAML syntax error: {reason}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(path, None, None, f"YAML error: {exc}") from None
    except RecursionError:
        raise ConfigError(path, None, None, "nested too deeply to read") from None
    builder = _Builder(path)
    if root is None:
        return Document(path, None, {(): 1})
    builder.lines[()] = root.start_mark.line + 1
    try:
        value = builder.build(root, (), 0)
    except yaml.YAMLError as exc:
        raise ConfigError(path, None, None, f"YAML error: {exc}") from None
    return Document(path, value, builder.lines)
