"""A soak: the real ``chorus serve`` under an hour of mixed traffic from simulated members, with faults.

The bot runs with the local queue (or ``--celery``: real Redis and two ``chorus worker`` processes)
against the Discord stand-in (`tests.bot.harness.Harness`); 12 members and an admin act on a seeded
schedule, about one action every ``--every`` seconds:

- ``/compose`` of every style and form, with and without options, some with a seed MIDI;
- the buttons under clips (Another take, Continue, Variation) on recent and on old clips, some
  pressed twice at once, and Cancel on queued requests (sometimes twice);
- ``/styles``, ``/help``, autocomplete of styles;
- admin: ``queue``, ``audit``, an install of the packed jazz checkpoint (as ``jazz-b``), then swaps of
  jazz between it and the shipped one, back and forth;
- hostile input now and then: bad options, a junk file as seed;
- faults: a worker killed (-9) every ``--worker-kill-every`` minutes, the bot killed (-9) and started
  again once, half-way; with ``--celery`` Redis restarted once, at a third.

Every 30 s it prints a row (`bench.soak_probe`): RSS and open fds of each process, SQLite and clip-store
bytes, the loop's longest stall, acknowledgement times, queue depth and jobs by status. At the end the
traffic stops, the queue drains, and every accepted job is settled as a member sees it: delivered once,
failed with a notice, cancelled, duplicated or lost. It writes the plot to ``bench/figures/`` and,
with ``--json``, the summary. Retention is scaled down (clips and seeds kept 10 minutes, pruned every
minute) so the clip store reaches its bound within the run.

Usage: python bench/soak.py [--minutes 60] [--celery] [--seed 1] [--every 3] [--worker-kill-every 10]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.soak_probe import Probe, children, header, ledger, line, plot, role  # noqa: E402
from bench.soak_traffic import Traffic  # noqa: E402
from tests.bot.harness import WARM_LOG, Harness, exit_on_signals  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
STYLES = ("jazz", "folk", "bach", "metheny")
KEEP_DAYS = 10 / 1440  # 10 minutes


def settings_env(args: argparse.Namespace) -> dict[str, str]:
    return {"CHORUS_KEEP_CLIPS_DAYS": f"{KEEP_DAYS:.6f}", "CHORUS_KEEP_SEEDS_DAYS": f"{KEEP_DAYS:.6f}",
            "CHORUS_KEEP_TOKENS_DAYS": f"{2 * KEEP_DAYS:.6f}", "CHORUS_PRUNE_INTERVAL_S": "60",
            "CHORUS_LOOP_REPORT_S": "30", "CHORUS_MAX_QUEUE": "30", "CHORUS_JOB_TIMEOUT_S": "120",
            "CHORUS_DELIVERY_RETRY_S": "5"}


class Soak:
    """The bot, its parts, the traffic and the probe, for one run."""

    def __init__(self, tmp: Path, args: argparse.Namespace) -> None:
        self.args, self.tmp = args, tmp
        self.redis = self.workers = None
        env = settings_env(args)
        if args.celery:
            from bot.queues.celery.parts import RedisServer, Workers

            self.redis = RedisServer(tmp)
            self.redis.start()
            self.workers = Workers(tmp / "workers", self.redis.url, job_timeout_s=120, CHORUS_SAMPLER="numpy")
            (tmp / "workers").mkdir()
            env |= {"CHORUS_QUEUE": "celery", "CHORUS_REDIS_URL": self.redis.url}
        self.h = Harness(tmp / "bot", {s: (ROOT / "checkpoints" / s).resolve() for s in STYLES}, **env)
        self.traffic = Traffic(self.h, random.Random(args.seed), STYLES)
        self.probe = Probe(self.h, time.monotonic())
        self.faults: list[tuple[float, str]] = []  # (minute, what)

    def start(self) -> None:
        if self.workers is not None:
            self.workers.start(2)
            self.watch_parts()
        self.h.start_bot()
        if self.workers is None:
            self.h.wait_for_log(WARM_LOG, timeout=180)

    def watch_parts(self) -> None:
        self.probe.extra = {f"worker{i}": p.pid for i, p in enumerate(self.workers.alive())}
        if self.redis is not None and self.redis.proc is not None:
            self.probe.extra["redis"] = self.redis.proc.pid

    def minutes(self) -> float:
        return (time.monotonic() - self.probe.t0) / 60

    def kill_worker(self) -> None:
        if self.workers is not None:
            victim = self.workers.alive()[0]
            victim.send_signal(signal.SIGKILL)
            victim.wait(10)
            self.workers.start(1)  # as a supervisor would
            self.watch_parts()
        else:
            pids = [p for p in children(self.h.proc.pid) if role(p) == "worker"]
            if not pids:
                return
            os.kill(pids[0], signal.SIGKILL)  # the bot starts another
        self.faults.append((self.minutes(), "worker killed (-9)"))

    def kill_bot(self) -> None:
        self.traffic.settle(timeout=10)  # the interactions sent so far are answered first
        self.h.kill_bot()
        self.faults.append((self.minutes(), "bot killed (-9) and started again"))
        self.h.start_bot()

    def restart_redis(self) -> None:
        self.traffic.settle(timeout=10)
        self.redis.stop()
        self.redis.start()
        self.watch_parts()
        self.faults.append((self.minutes(), "Redis restarted"))

    def run(self) -> dict:
        a = self.args
        end = self.probe.t0 + a.minutes * 60
        next_sample, next_kill = self.probe.t0, self.probe.t0 + a.worker_kill_every * 60
        bot_kill, redis_at = self.probe.t0 + a.minutes * 30, self.probe.t0 + a.minutes * 20
        names = ["bot", "worker0", "worker1", "redis"] if a.celery else ["bot", "worker0", "seeds"]
        print(header(names), flush=True)
        while (now := time.monotonic()) < end:
            if now >= next_sample:
                print(line(self.probe.sample(), names), flush=True)
                self.traffic.trim()
                next_sample += 30
            if now >= next_kill:
                self.kill_worker()
                next_kill += a.worker_kill_every * 60
            if bot_kill and now >= bot_kill:
                self.kill_bot()
                bot_kill = 0
            if a.celery and redis_at and now >= redis_at:
                self.restart_redis()
                redis_at = 0
            self.traffic.act(self.minutes() / a.minutes)
            time.sleep(max(0.0, a.every * random.Random(now).uniform(0.5, 1.5) - (time.monotonic() - now)))
        drained = self.traffic.drain(timeout=600)
        print(line(self.probe.sample(), names), flush=True)
        return {"names": names, "drained": drained, **ledger(self.h)}

    def close(self) -> None:
        self.h.close()
        if self.workers is not None:
            self.workers.close()
        if self.redis is not None:
            self.redis.stop()


def growth(rows: list[dict], name: str) -> tuple[float, int, str] | None:
    """The worst growth of RSS (%) and fds of any one process in the role ``name``, each measured from
    its first sample at least 10 minutes into the run and 3 minutes into its own life (a process
    killed and started again is a new one), to its largest after; with the pid's figures in words."""
    worst, born = None, {}
    for r in rows:
        if name in r["procs"]:
            born.setdefault(r["procs"][name][2], r["min"])
    for pid, start in born.items():
        seen = [r["procs"][name] for r in rows if name in r["procs"] and r["procs"][name][2] == pid
                and r["min"] >= max(10.0, start + 3.0)]
        if len(seen) < 2:
            continue
        rss, fds = (max(s[0] for s in seen) / seen[0][0] - 1) * 100, max(s[1] for s in seen) - seen[0][1]
        words = (f"pid {pid}: RSS {seen[0][0]:.0f} -> max {max(s[0] for s in seen):.0f} MiB ({rss:+.1f}%),"
                 f" fds {seen[0][1]} -> max {max(s[1] for s in seen)} ({fds:+d})")
        if worst is None or (rss, fds) > worst[:2]:
            worst = (rss, fds, words)
    return worst


def verdict(rows: list[dict], summary: dict, names: list[str]) -> list[str]:
    """The acceptance bounds, one line each: figure and whether it held."""
    out = []
    for n in names:
        if (g := growth(rows, n)) is not None:
            out.append(f"{n}: worst {g[2]} (bounds +5%, +10): {'held' if g[0] <= 5 and g[1] <= 10 else 'NOT HELD'}")
        else:
            out.append(f"{n}: no process lived 3 minutes past minute 10: not measured")
    over = [r for r in rows if r["clip_dirs"] > r["retained_bound"]]
    out.append(f"clip store: max {max(r['clips_mib'] for r in rows):.1f} MiB, {max(r['clip_dirs'] for r in rows)} "
               f"folders; over the retention bound in {len(over)} of {len(rows)} samples: {'held' if not over else 'NOT HELD'}")
    last = rows[-1]
    per_job = [r["db_mib"] * 1024 / r["accepted"] for r in rows if r["accepted"] >= 100]
    out.append(f"SQLite: {last['db_main_mib']:.2f} MiB + WAL {last['db_mib'] - last['db_main_mib']:.2f} MiB for "
               f"{last['accepted']} jobs; KiB per job (file and WAL) "
               + (f"{per_job[0]:.1f} at 100+ jobs -> {per_job[-1]:.1f} at the end" if per_job else "-")
               + " (job rows are the record and stay; seeds and tokens are forgotten by retention)")
    stalls = [r["stall_ms"] for r in rows if r["stall_ms"] is not None]
    out.append(f"loop: longest stall {max(stalls, default=0):.0f} ms (bound 250): "
               f"{'held' if max(stalls, default=0) < 250 else 'NOT HELD'}")
    acks = [r["ack_max"] for r in rows if r["ack_max"] is not None]
    unacked = sum(r["unacked"] for r in rows)
    out.append(f"acks: max {max(acks, default=0):.2f} s, unanswered {unacked} (bound 3 s, 0): "
               f"{'held' if max(acks, default=0) < 3 and not unacked else 'NOT HELD'}")
    s = summary
    balanced = s["accepted"] == s["delivered"] + s["failed_with_notice"] + s["cancelled"]
    out.append(f"jobs: accepted {s['accepted']} = delivered {s['delivered']} + failed with notice "
               f"{s['failed_with_notice']} + cancelled {s['cancelled']}: {'held' if balanced else 'NOT HELD'}; "
               f"duplicated {s['duplicated']}, lost {s['lost']}: "
               f"{'held' if not s['duplicated'] and not s['lost'] else 'NOT HELD'}")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--celery", action="store_true", help="Redis and two chorus worker processes")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--every", type=float, default=3.0, help="mean seconds between member actions")
    ap.add_argument("--worker-kill-every", type=float, default=10.0, help="minutes between worker kills")
    ap.add_argument("--figure", type=Path, default=None, help="the plot (default bench/figures/soak-<queue>.png)")
    ap.add_argument("--json", type=Path, default=None, help="write the rows and the summary here")
    args = ap.parse_args()
    exit_on_signals()
    kind = "celery" if args.celery else "local"
    with tempfile.TemporaryDirectory(prefix="chorus-soak-") as tmp:
        soak = Soak(Path(tmp), args)
        try:
            soak.start()
            import bot

            print(f"soak: {kind} queue, {args.minutes:g} min, seed {args.seed}, bot code from "
                  f"{Path(bot.__file__).parent}", flush=True)
            summary = soak.run()
        finally:
            soak.close()
    rows, names = soak.probe.rows, summary.pop("names")
    print("\nfaults: " + "; ".join(f"{at:.1f} min: {what}" for at, what in soak.faults))
    print("traffic: " + ", ".join(f"{k} {v}" for k, v in sorted(soak.traffic.counts.items())))
    summary["admin"] = soak.traffic.admin_outcomes()
    print("admin answers (done/sent): " + ", ".join(f"{k} {v}" for k, v in summary["admin"].items()))
    print("jobs: " + json.dumps({k: v for k, v in summary.items() if k != "lost_jobs"}))
    for lost in summary["lost_jobs"]:
        print(f"  lost: {lost}")
    checks = verdict(rows, summary, names)
    print("\n".join(checks))
    figure = args.figure or ROOT / "bench" / "figures" / f"soak-{kind}.png"
    plot(rows, names, f"soak, {kind} queue, {args.minutes:g} min (dotted: faults)", figure, soak.faults)
    print(f"plot: {figure}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "summary": summary, "checks": checks,
                                         "faults": [f"{at:.1f} min: {what}" for at, what in soak.faults], "traffic": soak.traffic.counts}, indent=1))


if __name__ == "__main__":
    main()
