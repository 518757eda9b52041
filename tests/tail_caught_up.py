"""logrotate `prerotate` hook for files/test_logrotate_tail.py: wait until `tail -F` has caught up.

    python3 tail_caught_up.py TAIL_PID TAIL_OUTPUT FILE

Exits 0 once the `tail -F` process TAIL_PID watches FILE's inode (inotify, from
/proc/PID/fdinfo) and TAIL_OUTPUT holds FILE's last complete line; exits 1 after a minute,
saying why on stderr (logrotate then skips the rotation and reports the error).

Why: `tail -F` follows a name. On a rename it opens whatever the name holds when it gets to the
event (coreutils 9.1 recheck()), so a file created and renamed away while tail was not scheduled
is never read by it, whoever writes the file. In CI a CPU-starved tail missed two whole
1,500-line files that way; running tail at nice 19 next to busy loops misses one in most runs.
A real rotation comes hours apart; the test rotates every few tens of milliseconds, so it holds
each rotation until tail has caught up. Waiting here, inside logrotate, means the file checked
is the file renamed next: it cannot be replaced between the check and the rename.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

WATCH = re.compile(r"^inotify wd:[0-9a-f]+ ino:([0-9a-f]+) ", re.M)


def watched_inodes(pid: int) -> set[int]:
    """The inodes the inotify instances of process ``pid`` watch (wd and ino are hex)."""
    inodes: set[int] = set()
    for info in Path(f"/proc/{pid}/fdinfo").iterdir():
        try:
            text = info.read_text()
        except OSError:
            continue
        inodes |= {int(ino, 16) for ino in WATCH.findall(text)}
    return inodes


def printed(output: Path, line: bytes) -> bool:
    """True if ``line`` is a whole line of ``output``."""
    out = output.read_bytes()
    return out.startswith(line + b"\n") or b"\n" + line + b"\n" in out


def caught_up(pid: int, output: Path, path: Path) -> str | None:
    """None if tail has caught up with ``path``, else what it has not done yet."""
    try:
        inode = path.stat().st_ino
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    if inode not in watched_inodes(pid):
        return f"tail does not watch {path} (inode {inode})"
    complete = data[: data.rfind(b"\n") + 1]
    last = complete[:-1].rsplit(b"\n", 1)[-1]
    if complete and not printed(output, last):
        return f"tail has not printed {path}'s last line {last!r}"
    return None


def main(argv: list[str]) -> int:
    pid, output, path = int(argv[1]), Path(argv[2]), Path(argv[3])
    deadline = time.monotonic() + 60
    while (why := caught_up(pid, output, path)) is not None:
        if time.monotonic() > deadline:
            print(f"tail_caught_up: gave up after 60 s: {why}", file=sys.stderr)
            return 1
        time.sleep(0.005)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
