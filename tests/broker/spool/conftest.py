"""Fixtures of the embedded broker's tests: a spool folder, a connection, child processes."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from kombu import Connection
from spoolkit import connect


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "broker"


@pytest.fixture
def conn(root: Path) -> Iterator[Connection]:
    with connect(root, polling_interval=0.01) as connection:
        yield connection


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
