"""YAML read safely, every key's line remembered, hostile files refused with file and line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from logfan.daemon.config.yamlsource import (
    MAX_BYTES,
    MAX_DEPTH,
    MAX_NODES,
    Document,
    SourceInt,
    load_yaml,
)
from logfan.daemon.errors import ConfigError


def write(tmp_path: Path, text: str) -> str:
    """``text`` (dedented) as a config file; its path."""
    path = tmp_path / "logfan.yaml"
    path.write_text(textwrap.dedent(text))
    return str(path)


NESTED = """\
broker:
  url: amqp://h//
sinks:
  all:
    type: file
    rotate:
      keep: 3
  syslog:
    type: syslog
    hosts:
      - a.example.org
      -   b.example.org
      - name: c
        port: 514
"""


class TestLoadYaml:
    """``load_yaml``: plain values and the line of each key and list item."""

    def test_plain_values(self, tmp_path: Path) -> None:
        """Mappings become dicts and sequences lists; scalars are the safe loader's."""
        doc = load_yaml(write(tmp_path, NESTED))
        assert doc.value == {
            "broker": {"url": "amqp://h//"},
            "sinks": {
                "all": {"type": "file", "rotate": {"keep": 3}},
                "syslog": {
                    "type": "syslog",
                    "hosts": ["a.example.org", "b.example.org", {"name": "c", "port": 514}],
                },
            },
        }

    def test_lines_of_nested_keys(self, tmp_path: Path) -> None:
        """Each key path has the (1-based) line its key is written on."""
        doc = load_yaml(write(tmp_path, NESTED))
        assert doc.lines[()] == 1
        assert doc.lines[("broker",)] == 1
        assert doc.lines[("broker", "url")] == 2
        assert doc.lines[("sinks", "all")] == 4
        assert doc.lines[("sinks", "all", "rotate", "keep")] == 7
        assert doc.lines[("sinks", "syslog", "type")] == 9

    def test_lines_of_list_items(self, tmp_path: Path) -> None:
        """List items are keyed by their index, with their own lines."""
        doc = load_yaml(write(tmp_path, NESTED))
        hosts = ("sinks", "syslog", "hosts")
        assert [doc.lines[(*hosts, str(i))] for i in range(3)] == [11, 12, 13]
        assert doc.lines[(*hosts, "2", "port")] == 14

    def test_empty_file(self, tmp_path: Path) -> None:
        """An empty file is the value None, at line 1."""
        doc = load_yaml(write(tmp_path, ""))
        assert doc.value is None
        assert doc.line(("sinks",)) == 1

    def test_non_string_keys_become_strings(self, tmp_path: Path) -> None:
        """A key written as a number is the string of it."""
        assert load_yaml(write(tmp_path, "1: one\ntrue: yes\n")).value == {"1": "one", "True": True}

    def test_missing_file(self, tmp_path: Path) -> None:
        """A file that cannot be read: a ConfigError naming it, without a line."""
        path = str(tmp_path / "absent.yaml")
        with pytest.raises(ConfigError) as caught:
            load_yaml(path)
        assert (caught.value.path, caught.value.line) == (path, None)
        assert caught.value.reason == "cannot read the config file: No such file or directory"


class TestDocumentLine:
    """``Document.line``: the line of a key, else of its nearest enclosing key."""

    def test_falls_back_to_the_enclosing_key(self, tmp_path: Path) -> None:
        """A key that is not written (a missing option) takes its parent's line."""
        doc = load_yaml(write(tmp_path, NESTED))
        assert doc.line(("sinks", "all", "path")) == 4
        assert doc.line(("sinks", "all", "rotate", "max_bytes")) == 6
        assert doc.line(("nothing", "here")) == 1, "the document's own line at the end"

    def test_error_names_file_line_and_key(self, tmp_path: Path) -> None:
        """``error`` builds the ConfigError of a key: file, line, dotted key, reason."""
        path = write(tmp_path, NESTED)
        error = load_yaml(path).error(("sinks", "all", "rotate", "keep"), "too many")
        assert str(error) == f"{path}:7: sinks.all.rotate.keep: too many"
        assert load_yaml(path).error((), "bad").key is None

    def test_document_without_lines(self) -> None:
        """A document that knows no lines says None."""
        assert Document("x.yaml", {}, {}).line(("a", "b")) is None


class TestSourceInt:
    """``SourceInt``: an integer that remembers how it was written."""

    def test_octal_and_decimal_differ_in_source(self, tmp_path: Path) -> None:
        """``0640`` reads as 416 and ``640`` as 640, each keeping its text."""
        value = load_yaml(write(tmp_path, "a: 0640\nb: 640\nc: 0x1A\n")).value
        assert (value["a"], value["a"].source_text) == (0o640, "0640")
        assert (value["b"], value["b"].source_text) == (640, "640")
        assert (value["c"], value["c"].source_text) == (26, "0x1A")
        assert all(isinstance(v, SourceInt) for v in value.values())

    def test_booleans_and_floats_stay_as_they_are(self, tmp_path: Path) -> None:
        """Only integers get a source text: a bool stays a bool, a float a float."""
        value = load_yaml(write(tmp_path, "a: true\nb: 1.5\n")).value
        assert value["a"] is True
        assert type(value["b"]) is float

    def test_is_an_int(self) -> None:
        """A SourceInt compares, hashes and counts as its integer value."""
        number = SourceInt(416, "0640")
        assert number == 416
        assert hash(number) == hash(416)
        assert number + 1 == 417
        assert number.source_text == "0640"


class TestRefusals:
    """Hostile or unusual YAML: a ConfigError with the file, and the line where known."""

    def refused(self, path: str) -> ConfigError:
        with pytest.raises(ConfigError) as caught:
            load_yaml(path)
        assert caught.value.path == path
        return caught.value

    def test_duplicate_key(self, tmp_path: Path) -> None:
        """A key given twice: the second's line and key path."""
        error = self.refused(write(tmp_path, "sinks:\n  a:\n    type: file\n  a:\n    type: x\n"))
        assert (error.line, error.key, error.reason) == (4, "sinks.a", "duplicate key")

    def test_merge_key(self, tmp_path: Path) -> None:
        """``<<`` merge keys are refused, at their line."""
        text = "base: &b\n  type: file\nsinks:\n  a:\n    <<: *b\n"
        error = self.refused(write(tmp_path, text))
        assert (error.line, error.key) == (5, "sinks.a")
        assert error.reason == "merge keys (<<) are not supported"

    @pytest.mark.parametrize(
        "tag",
        [
            "!!python/object/apply:os.system [echo hi]",
            "!!python/object:logfan.Thing {a: 1}",
            "!!set {a, b}",
        ],
    )
    def test_collection_tags(self, tmp_path: Path, tag: str) -> None:
        """A collection with a tag other than plain map or seq is refused at its line."""
        error = self.refused(write(tmp_path, f"sinks:\n  a: {tag}\n"))
        assert (error.line, error.key) == (2, "sinks.a")
        assert error.reason.startswith("unsupported YAML tag 'tag:yaml.org,2002:")

    def test_python_scalar_tag(self, tmp_path: Path) -> None:
        """A python tag on a scalar is refused: nothing of it is constructed."""
        error = self.refused(write(tmp_path, "sinks:\n  a: !!python/name:os.system\n"))
        assert "python/name:os.system" in error.reason

    def test_too_large(self, tmp_path: Path) -> None:
        """A file over MAX_BYTES is refused before it is parsed."""
        path = tmp_path / "logfan.yaml"
        path.write_bytes(b"# x\n" * (MAX_BYTES // 4 + 1))
        error = self.refused(str(path))
        assert (error.line, error.reason) == (None, f"the file is larger than {MAX_BYTES} bytes")

    def test_not_utf8(self, tmp_path: Path) -> None:
        """Bytes that are not UTF-8: refused, saying where."""
        path = tmp_path / "logfan.yaml"
        data = b"sinks:\n  a: caf\xe9\n"
        path.write_bytes(data)
        assert self.refused(str(path)).reason == f"not UTF-8 text (byte {data.index(0xE9)})"

    def test_alias_bomb(self, tmp_path: Path) -> None:
        """Aliases that would expand to more than MAX_NODES values are refused, not expanded."""
        text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        for name, previous in zip("bcdef", "abcde", strict=True):
            text += f"{name}: &{name} [{', '.join([f'*{previous}'] * 10)}]\n"
        error = self.refused(write(tmp_path, text))
        assert error.reason == f"more than {MAX_NODES} values (an alias bomb?); refusing to load"
        assert error.line is not None

    def test_too_deep(self, tmp_path: Path) -> None:
        """Nesting deeper than MAX_DEPTH is refused at its line."""
        depth = MAX_DEPTH + 5
        error = self.refused(write(tmp_path, "a:\n  b: " + "[" * depth + "]" * depth + "\n"))
        assert error.reason == f"nested more than {MAX_DEPTH} levels deep"
        assert error.line == 2

    def test_self_referencing_alias(self, tmp_path: Path) -> None:
        """A list that contains itself is refused (it would be infinitely deep)."""
        assert "nested more than" in self.refused(write(tmp_path, "a: &x [*x]\n")).reason

    def test_syntax_error(self, tmp_path: Path) -> None:
        """A YAML syntax error names its line."""
        error = self.refused(write(tmp_path, "sinks:\n  a: [unclosed\n  b: 1\n"))
        assert error.reason.startswith("YAML syntax error")
        assert error.line in (2, 3)

    @pytest.mark.parametrize("tag", ["!!python/name:os.system", "!!python/int 5", "!custom x"])
    def test_scalar_tag_names_line_and_key(self, tmp_path: Path, tag: str) -> None:
        """A scalar with a tag the safe loader has no constructor for: one line, at its key."""
        path = tmp_path / "logfan.yaml"
        path.write_text(textwrap.dedent(f"sinks:\n  a:\n    type: {tag}\n"))
        with pytest.raises(ConfigError) as caught:
            load_yaml(str(path))
        assert (caught.value.line, caught.value.key) == (3, "sinks.a.type")
        assert "\n" not in caught.value.reason
