"""Profiling the bench's server with py-spy (`pip install -r bench/requirements.txt`), from
outside its process: `start` records collapsed stacks (speedscope and flamegraph.pl read
them), `summarize` writes top.txt beside them — the on-CPU samples by package, and the
functions most often on the stack and at its top. `python -m bench.cost --profile DIR`
uses both; `BENCH_PYSPY_NATIVE=1` adds C frames (uvloop, sqlite3) and pauses the server
for each sample.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path


def start(pid: int, seconds: float, folder: Path) -> subprocess.Popen[bytes] | None:
    """py-spy recording process `pid` for `seconds` into folder/profile.txt (None when
    py-spy is not installed: the figures are measured all the same)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        return None
    folder.mkdir(parents=True, exist_ok=True)
    cmd = [spy, "record", "--pid", str(pid), "--rate", "250", "--duration", str(int(seconds))]
    cmd += ["--format", "raw", "-o", str(folder / "profile.txt")]
    if os.environ.get("BENCH_PYSPY_NATIVE") == "1":
        cmd.append("--native")  # C frames too (uvloop, sqlite3); pauses the server to sample
    else:
        cmd.append("--nonblocking")
    with (folder / "py-spy.log").open("wb") as log:
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)


# Leaf frames py-spy reports as active that are waits: the loop in epoll (uvloop is native,
# so the wait shows as its Python caller) and idle worker threads blocked on their queue.
_WAITS = (
    "Runner.run (asyncio/runners.py",
    "_connection_worker_thread (aiosqlite/core.py:59)",
    "_worker (concurrent/futures/thread.py",
)


def summarize(folder: Path) -> None:
    """top.txt: the on-CPU samples (waits taken out) by package (the innermost frame outside
    the standard library: who asked for the work), then the functions most often on the
    stack (inclusive) and at its top (self)."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    package: Counter[str] = Counter()
    total = waits = 0
    for line in (folder / "profile.txt").read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        n = int(count)
        if frames[-1].startswith(_WAITS):
            waits += n
            continue
        total += n
        own[frames[-1]] += n
        package[_package(frames)] += n
        for frame in set(frames):
            inclusive[frame] += n
    out = [f"{total} on-CPU samples ({waits} samples of waiting left out)", "", "by package:"]
    out += [f"{c / total:6.1%}  {f}" for f, c in package.most_common()]
    out += ["", "inclusive:"] + [f"{c / total:6.1%}  {f}" for f, c in inclusive.most_common(100)]
    out += ["", "self:"] + [f"{c / total:6.1%}  {f}" for f, c in own.most_common(50)]
    (folder / "top.txt").write_text("\n".join(out) + "\n")


def _package(frames: list[str]) -> str:
    """The top-level package of the innermost non-standard-library frame of a stack."""
    for frame in reversed(frames):
        path = frame.rpartition(" (")[2]
        top = path.split("/")[0].split(":")[0].removesuffix(".py")
        if top and not top.startswith("<") and top not in sys.stdlib_module_names:
            return top
    return "(standard library)"
