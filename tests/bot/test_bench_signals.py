"""A benchmark that runs the bot (``bench/bot_load.py``, through `tests.bot.harness.exit_on_signals`)
ends what it started when it is stopped from outside: SIGTERM (``timeout``, ``kill``) and SIGINT
(Ctrl-C) leave no ``chorus serve`` and no worker process behind."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bot.harness import poll

pytestmark = pytest.mark.slow  # real processes end to end: `make test-fast` leaves these out

ROOT = Path(__file__).resolve().parents[2]


def children() -> dict[int, tuple[int, str]]:
    """Every process now: pid -> (parent pid, state letter); a process gone meanwhile is left out."""
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
            out[int(entry.name)] = (int(fields[1]), fields[0])
    return out


def descendants(pid: int) -> set[int]:
    procs, found, todo = children(), set(), [pid]
    while todo:
        parent = todo.pop()
        kids = {p for p, (pp, _) in procs.items() if pp == parent}
        found |= kids
        todo += kids
    return found


def alive(pids: set[int]) -> set[int]:
    """Those of ``pids`` still running (a zombie waiting for its reaper has ended)."""
    procs = children()
    return {p for p in pids if p in procs and procs[p][1] != "Z"}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stopped_bench_leaves_no_bot_or_worker_running(tmp_path: Path, tiny_checkpoint: Path, sig: int) -> None:
    log = (tmp_path / "bench.log").open("wb")
    bench = subprocess.Popen([sys.executable, str(ROOT / "bench" / "bot_load.py"), "--requests", "2",
                              "--checkpoint", str(tiny_checkpoint)], cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        def started() -> set[int]:  # the bot and its worker process, a grandchild of the bench
            procs = descendants(bench.pid)
            return procs if any(children().get(p, (0, ""))[0] in procs for p in procs) else set()

        started_pids = poll(started, 120, "the bench starting the bot and its worker")
        bench.send_signal(sig)
        assert bench.wait(60) == 128 + sig
        poll(lambda: not alive(started_pids), 30, "the bench's processes ending")
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.wait(10)
        for pid in alive(descendants(bench.pid)):
            os.kill(pid, signal.SIGKILL)
        log.close()
