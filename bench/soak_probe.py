"""What `bench/soak.py` measures: processes, files, the loop, acknowledgements and the jobs' fate.

`Probe.sample` reads, every 30 s: RSS and open fds of the bot and of each worker (a local worker is
the bot's child that has FluidSynth loaded; Celery workers and Redis by pid), the SQLite file (with
its WAL) and the clip store, the loop's longest stall in that window (the bot logs it,
``CHORUS_LOOP_REPORT_S``), acknowledgement times of the interactions sent in the window (as the
stand-in saw them), the queue depth (queued, running, or finished and not yet posted) and the jobs by status (SQLite; a
cancelled job is a failed one). `ledger` settles, at the end,
what each accepted job became as a member sees it: one clip, a failure notice, "cancelled", more
than one clip (duplicated) or nothing (lost). `plot` draws the samples.
"""
from __future__ import annotations

import os
import re
import sqlite3
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.bot.harness import Harness
from tests.bot.standin_components import walk

STALL = re.compile(r"event loop stall: longest ([\d.]+) ms")
JOB_IN_ID = re.compile(r"chorus:(?:again|more|vary|cancel):(\w+)")
MiB = 1024 * 1024


def proc_stat(pid: int) -> tuple[float, int, int] | None:
    """(RSS in MiB, open fds, pid) of a live process, or None."""
    try:
        rss = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                   if line.startswith("VmRSS:"))
        return rss / 1024, len(list(Path(f"/proc/{pid}/fd").iterdir())), pid
    except (OSError, StopIteration, ValueError):
        return None


def children(pid: int) -> list[int]:
    try:
        return sorted(int(p) for t in Path(f"/proc/{pid}/task").iterdir()
                      for p in (t / "children").read_text().split())
    except OSError:
        return []


def maps(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return ""


def started_at(pid: int) -> int:
    """When a process started, in clock ticks since boot (0 if it is gone)."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return 0


def role(pid: int) -> str | None:
    """A local bot child's role: ``worker`` (FluidSynth mapped), ``seeds`` (the seed checker), or None
    (multiprocessing's resource tracker)."""
    try:
        if "resource_tracker" in Path(f"/proc/{pid}/cmdline").read_text():
            return None
    except OSError:
        return None
    return "worker" if "libfluidsynth" in maps(pid) else "seeds"


def tree_bytes(folder: Path) -> int:
    """Bytes of the files under ``folder``; a file or folder pruned meanwhile counts nothing."""
    total = 0
    for parent, _, files in os.walk(folder):  # os.walk passes over a folder that vanishes
        for name in files:
            try:
                total += os.stat(os.path.join(parent, name)).st_size
            except OSError:
                continue
    return total


def size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def count_dirs(folder: Path) -> int:
    try:
        return sum(1 for _ in os.scandir(folder))
    except OSError:
        return 0


@dataclass
class Probe:
    """Samples a running soak; ``rows`` holds one dict per sample."""

    h: Harness
    t0: float
    extra: dict[str, int] = field(default_factory=dict)  # name -> pid (Celery workers, Redis), set by the soak
    redis_url: str | None = None  # with Celery: Redis's own count of the bytes its data takes
    rows: list[dict[str, Any]] = field(default_factory=list)
    _log_at: int = 0
    _acked: int = 0  # interactions counted so far (stand-in order)

    def db(self, sql: str) -> list[tuple]:
        try:
            with sqlite3.connect(f"file:{self.h.tmp / 'chorus.db'}?mode=ro", uri=True, timeout=5) as con:
                return con.execute(sql).fetchall()
        except sqlite3.Error:
            return []

    def processes(self) -> dict[str, tuple[float, int]]:
        out = {}
        if self.h.proc is not None and (bot := proc_stat(self.h.proc.pid)):
            out["bot"] = bot
            kids = [(r, p) for p in children(self.h.proc.pid) if (r := role(p))]
            for i, pid in enumerate(p for r, p in kids if r == "worker"):
                if stat := proc_stat(pid):
                    out[f"worker{i}"] = stat
            for pid in [p for r, p in kids if r == "seeds"][:1]:
                if stat := proc_stat(pid):
                    out["seeds"] = stat
        for name, pid in self.extra.items():
            if stat := proc_stat(pid):
                out[name] = stat
        return out

    def stall_ms(self) -> float | None:
        """The longest stall the bot logged since the last sample (None: no report in the window)."""
        log = self.h.bot_log()
        found = [float(x) for x in STALL.findall(log[self._log_at:])]
        self._log_at = len(log)
        return max(found) if found else None

    def acks(self) -> tuple[list[float], int]:
        """Ack seconds of the interactions sent since the last sample that are answered or past 3 s
        (the others wait for the next sample), and how many got no acknowledgement at all."""
        recs = list(self.h.standin.interactions.values())
        now, done, unacked, i = time.monotonic(), [], 0, self._acked
        while i < len(recs) and (recs[i].ack_seconds is not None or now - recs[i].sent_at > 5):
            if recs[i].ack_seconds is None:
                unacked += 1
            else:
                done.append(recs[i].ack_seconds)
            i += 1
        self._acked = i
        return done, unacked

    def sample(self) -> dict[str, Any]:
        statuses = dict(self.db("SELECT status, COUNT(*) FROM jobs GROUP BY status"))
        db = [size(self.h.tmp / f"chorus.db{end}") for end in ("", "-wal", "-shm")]  # the file, its WAL
        acks, unacked = self.acks()
        row = {"min": (time.monotonic() - self.t0) / 60, "procs": self.processes(), "db_mib": sum(db) / MiB, "db_main_mib": db[0] / MiB,
               "clips_mib": tree_bytes(self.h.tmp / "data" / "jobs") / MiB,
               "clip_dirs": count_dirs(self.h.tmp / "data" / "jobs"),
               "stall_ms": self.stall_ms(), "ack_max": max(acks, default=None),
               "ack_med": statistics.median(acks) if acks else None, "unacked": unacked,
               "depth": statuses.get("queued", 0) + statuses.get("running", 0) + statuses.get("done", 0),
               "accepted": sum(statuses.values()), "delivered": statuses.get("delivered", 0),
               "failed": statuses.get("failed", 0),
               "retained_bound": self.retained_bound()}
        if self.redis_url:
            row["redis_data_mib"] = self.redis_data_mib()
        self.rows.append(row)
        return row

    def redis_data_mib(self) -> float | None:
        """Redis's ``used_memory``: what its data takes, apart from what its allocator holds."""
        import redis

        try:
            with redis.Redis.from_url(self.redis_url, socket_timeout=2, socket_connect_timeout=2) as r:
                return int(r.info("memory")["used_memory"]) / MiB
        except (redis.RedisError, OSError, KeyError, ValueError):
            return None

    def retained_bound(self) -> int:
        """Clip folders the settings allow now: those of jobs finished within keep_clips + one prune
        interval, plus the open ones (a folder is made when a job is accepted)."""
        env = self.h.env
        window = float(env["CHORUS_KEEP_CLIPS_DAYS"]) * 86400 + float(env["CHORUS_PRUNE_INTERVAL_S"])
        rows = self.db(f"SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running') OR updated_at > "
                       f"{time.time() - window}")
        return rows[0][0] if rows else 0


def header(names: list[str]) -> str:
    procs = "".join(f"{n + ' MiB/fd':>17}" for n in names)
    return (f"{'min':>5}{procs}{'db MiB':>8}{'clips MiB':>10}{'dirs/bound':>11}{'stall ms':>9}{'ack max':>8}"
            f"{'depth':>6}{'acc':>5}{'dlv':>5}{'fail':>5}")


def line(row: dict[str, Any], names: list[str]) -> str:
    procs = "".join(f"{'{:.0f}/{}'.format(*row['procs'][n][:2]) if n in row['procs'] else '-':>17}" for n in names)
    stall = "-" if row["stall_ms"] is None else f"{row['stall_ms']:.0f}"
    ack = "-" if row["ack_max"] is None else f"{row['ack_max']:.2f}"
    return (f"{row['min']:>5.1f}{procs}{row['db_mib']:>8.2f}{row['clips_mib']:>10.1f}"
            f"{str(row['clip_dirs']) + '/' + str(row['retained_bound']):>11}{stall:>9}{ack:>8}{row['depth']:>6}"
            f"{row['accepted']:>5}{row['delivered']:>5}{row['failed']:>5}")


def ledger(h: Harness) -> dict[str, Any]:
    """Every job the bot accepted and what a member sees of it now: clips posted under it (its
    buttons name it), its status message's notice. Call once the queue is drained."""
    probe = Probe(h, 0)
    jobs = probe.db("SELECT id, status, status_message_id FROM jobs")
    reasons = {str(e)[:70]: n for e, n in probe.db("SELECT error, COUNT(*) FROM jobs WHERE status = 'failed' GROUP BY error")}
    clips: Counter[str] = Counter()
    for message in list(h.standin.messages.values()):
        if len(message.get("attachments") or []) >= 3:
            ids = {m.group(1) for c in walk(message.get("components") or [])
                   if (m := JOB_IN_ID.fullmatch(c.get("custom_id") or ""))}
            clips.update(ids)
    out = Counter(accepted=len(jobs))
    lost = []
    for job_id, status, message_id in jobs:
        shown = (h.standin.messages.get(str(message_id)) or {}).get("content") or ""
        if clips[job_id] > 1:
            out["duplicated"] += 1
        if clips[job_id] >= 1 and status == "delivered":
            out["delivered"] += 1
        elif status == "failed" and shown.startswith("❌"):
            out["failed_with_notice"] += 1
        elif status == "failed" and shown.startswith("🚫"):  # its owner pressed Cancel
            out["cancelled"] += 1
        else:
            out["lost"] += 1
            lost.append((job_id, status, clips[job_id], shown[:80]))
    return {**{k: out[k] for k in ("accepted", "delivered", "failed_with_notice", "cancelled", "duplicated", "lost")},
            "lost_jobs": lost[:20], "failures": reasons}


def plot(rows: list[dict[str, Any]], names: list[str], title: str, out: Path,
         faults: list[tuple[float, str]] = ()) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [r["min"] for r in rows]
    fig, ax = plt.subplots(3, 2, figsize=(12, 10), sharex=True)
    for n in names:
        ax[0][0].plot(t, [r["procs"].get(n, (float("nan"),))[0] for r in rows], label=n)
        ax[0][1].plot(t, [r["procs"].get(n, (0, float("nan")))[1] for r in rows], label=n)
    ax[0][0].set_ylabel("RSS MiB")
    ax[0][1].set_ylabel("open fds")
    ax[1][0].plot(t, [r["db_mib"] for r in rows], label="SQLite (+WAL)")
    ax[1][0].plot(t, [r["clips_mib"] for r in rows], label="clip store")
    ax[1][0].set_ylabel("MiB")
    ax[1][1].plot(t, [r["stall_ms"] if r["stall_ms"] is not None else float("nan") for r in rows], "o-",
                  label="loop: longest stall")
    ax[1][1].axhline(250, color="r", ls=":", label="250 ms")
    ax[1][1].set_ylabel("ms")
    ax[2][0].plot(t, [r["ack_max"] if r["ack_max"] is not None else float("nan") for r in rows], "o-", label="ack max")
    ax[2][0].plot(t, [r["ack_med"] if r["ack_med"] is not None else float("nan") for r in rows], label="ack median")
    ax[2][0].axhline(3, color="r", ls=":", label="3 s")
    ax[2][0].set_ylabel("s")
    for key in ("accepted", "delivered", "failed"):
        ax[2][1].plot(t, [r[key] for r in rows], label=key)
    ax[2][1].plot(t, [r["depth"] for r in rows], label="queue depth")
    ax[2][1].set_ylabel("jobs")
    for a in ax.flat:
        for at, _ in faults:
            a.axvline(at, color="grey", ls=":", lw=0.8)
        a.legend(fontsize=7)
        a.grid(alpha=0.3)
    for a in ax[2]:
        a.set_xlabel("minutes")
    fig.suptitle(title)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
