"""The sink in docs/writing-a-sink.md, and its test there, run as written (the page cannot rot)."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest
from logfan_testkit import REPO

PAGE = REPO / "docs" / "writing-a-sink.md"


def blocks() -> list[str]:
    """The page's Python code blocks."""
    return re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), re.DOTALL)


def test_the_example_sink_passes_its_own_test(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`logfan_jsonl.py` and the test that calls check_sink on it, as the page gives them."""
    (sink,) = [b for b in blocks() if "class JsonLinesSink" in b]
    (test,) = [b for b in blocks() if "check_sink(" in b]
    (tmp_path / "logfan_jsonl.py").write_text(sink)
    (tmp_path / "test_jsonl.py").write_text(test)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "logfan_jsonl", raising=False)
    spec = importlib.util.spec_from_file_location("docs_test_jsonl", tmp_path / "test_jsonl.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    work = tmp_path / "work"
    work.mkdir()
    module.test_keeps_the_contract(work)
    assert len((work / "audit.jsonl").read_text(encoding="utf-8").splitlines()) == 200
