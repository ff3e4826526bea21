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
with ``--json``, the samples and the summary (and the bot's log beside it). Retention is scaled down (clips and seeds kept 10 minutes, pruned every
minute) so the clip store reaches its bound within the run.

``--report FILE`` prints the report (and draws the plot) of a run saved with ``--json`` again.

Usage: python bench/soak.py [--minutes 60] [--celery] [--seed 1] [--every 3] [--worker-kill-every 10]
       python bench/soak.py --report soak.json [--figure out.png]
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
from bench.soak_probe import Probe, children, header, ledger, line, role, started_at  # noqa: E402
from bench.soak_report import report  # noqa: E402
from bench.soak_traffic import Traffic  # noqa: E402
from tests.bot.harness import WARM_LOG, Harness, exit_on_signals  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
STYLES = ("jazz", "folk", "bach", "metheny")
KEEP_DAYS = 10 / 1440  # 10 minutes


def settings_env(args: argparse.Namespace) -> dict[str, str]:
    return {"CHORUS_KEEP_CLIPS_DAYS": f"{KEEP_DAYS:.6f}", "CHORUS_KEEP_SEEDS_DAYS": f"{KEEP_DAYS:.6f}",
            "CHORUS_KEEP_TOKENS_DAYS": f"{2 * KEEP_DAYS:.6f}", "CHORUS_PRUNE_INTERVAL_S": "60",
            "CHORUS_LOOP_REPORT_S": "30", "CHORUS_MAX_QUEUE": "30", "CHORUS_JOB_TIMEOUT_S": "120",
            "CHORUS_DELIVERY_RETRY_S": "5", "CHORUS_WORKERS": str(args.workers)}


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
            self.workers.start(self.args.workers)
            self.watch_parts()
        self.h.start_bot()
        if self.workers is None:
            self.h.wait_for_log(WARM_LOG, timeout=180)

    def watch_parts(self) -> None:
        self.probe.extra = {f"worker{i}": p.pid for i, p in enumerate(self.workers.alive())}
        if self.redis is not None and self.redis.proc is not None:
            self.probe.extra["redis"] = self.redis.proc.pid
            self.probe.redis_url = self.redis.url

    def minutes(self) -> float:
        return (time.monotonic() - self.probe.t0) / 60

    def kill_worker(self) -> None:
        """Kill the youngest worker: after the first kill one worker lives the whole run, so the
        memory bound can be judged on a long life as well as on the replacements'."""
        if self.workers is not None:
            victim = self.workers.alive()[-1]
            victim.send_signal(signal.SIGKILL)
            victim.wait(10)
            self.workers.start(1)  # as a supervisor would
            self.watch_parts()
        else:
            pids = [p for p in children(self.h.proc.pid) if role(p) == "worker"]
            if not pids:
                return
            os.kill(max(pids, key=started_at), signal.SIGKILL)  # the bot starts another
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
        names = (["bot", "worker0", "worker1", "redis"] if a.celery
                 else ["bot", *(f"worker{i}" for i in range(a.workers)), "seeds"])
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--minutes", type=float, default=60)
    ap.add_argument("--celery", action="store_true", help="Redis and two chorus worker processes")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--every", type=float, default=3.0, help="mean seconds between member actions")
    ap.add_argument("--workers", type=int, default=2, help="local worker processes (CHORUS_WORKERS)")
    ap.add_argument("--worker-kill-every", type=float, default=10.0, help="minutes between worker kills")
    ap.add_argument("--figure", type=Path, default=None, help="the plot (default bench/figures/soak-<queue>.png)")
    ap.add_argument("--json", type=Path, default=None, help="write the rows and the summary here")
    ap.add_argument("--report", type=Path, default=None, help="print the report of a soak saved with --json; no run")
    args = ap.parse_args()
    kind = "celery" if args.celery else "local"
    if args.report:
        data = json.loads(args.report.read_text())
        report(data, args.figure or ROOT / "bench" / "figures" / f"soak-{data.get('kind', kind)}.png")
        return
    exit_on_signals()
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
            if args.json:  # the bot's own log beside the figures, for what the samples cannot tell
                args.json.with_suffix(".bot.log").write_text(soak.h.bot_log())
    summary["admin"] = soak.traffic.admin_outcomes()
    data = {"kind": kind, "minutes": args.minutes, "seed": args.seed, "names": summary.pop("names"),
            "rows": soak.probe.rows, "summary": summary, "faults": soak.faults, "traffic": soak.traffic.counts}
    data["checks"] = report(data, args.figure or ROOT / "bench" / "figures" / f"soak-{kind}.png")
    if args.json:
        args.json.write_text(json.dumps(data, indent=1))

if __name__ == "__main__":
    main()
