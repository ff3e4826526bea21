"""Throughput and queue overhead: the local backend vs. Celery with 1 and 2 worker processes, each
with batching on (``CHORUS_BATCH_MAX``, default 4) and off (``CHORUS_BATCH_MAX=1``).

For each backend it warms the workers up (checkpoint and SoundFont loaded), then submits N jobs at
once, three times, and prints the median clips per minute; then runs a few jobs one at a time and
prints the queue's overhead per job: the time from submit to the clip's files in the bot's folder,
less the worker's own compose time (for Celery split into submit -> task start and task end -> bot).
Each throughput row also gives how many CPU cores were busy on average (/proc/stat): where one
worker already keeps them all busy, a second cannot add throughput.
Celery runs against a throwaway redis-server and real ``chorus worker`` processes (CPU); batched
Celery workers gather for ``CHORUS_BATCH_WINDOW_MS``.

Usage: python bench/workers.py [--checkpoint checkpoints/jazz] [--jobs 12] [--length 10] [--sequential 4]
           [--runs 3] [--batch-max 4]
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bot.queues.base import JobEvent, JobQueue, WorkItem, out_dir_for  # noqa: E402
from bot.queues.celery.parts import RedisServer, Workers  # noqa: E402
from bot.queues.celery.queue import CeleryQueue  # noqa: E402
from bot.queues.local import LocalQueue  # noqa: E402
from bot.settings import BotSettings, Secret  # noqa: E402
from engine.compose.request import ComposeRequest  # noqa: E402
from engine.models.checkpoint import read_meta  # noqa: E402
from tests.bot.harness import exit_on_signals  # noqa: E402


class Runner:
    """Submits jobs to a queue and records when each was submitted and finished."""

    def __init__(self, queue: JobQueue, settings: BotSettings, ck_hash: str, seconds: float, tag: str) -> None:
        self.queue, self.settings, self.ck_hash, self.seconds, self.tag = queue, settings, ck_hash, seconds, tag
        self.submitted: dict[str, float] = {}
        self.finished: dict[str, tuple[float, JobEvent]] = {}
        self.changed = asyncio.Event()
        self.count = 0
        queue.on_event = self.on_event

    async def on_event(self, e: JobEvent) -> None:
        if e.kind in ("done", "failed") and e.job_id not in self.finished:
            self.finished[e.job_id] = (time.time(), e)
            self.changed.set()

    async def submit(self, n: int) -> list[str]:
        ids = []
        for _ in range(n):
            self.count += 1
            # ids unique across backends: Redis keeps each job's result, and a job sent again under the
            # same id gets the stored one back instead of being composed
            job_id = f"bench-{self.tag}-{self.count:04d}"
            request = ComposeRequest("jazz", self.seconds, seed=self.count)
            item = WorkItem(job_id, request, "jazz", self.ck_hash, str(out_dir_for(self.settings.data_dir, job_id)))
            self.submitted[job_id] = time.time()
            await self.queue.submit(item)
            ids.append(job_id)
        return ids

    async def wait(self, ids: list[str], timeout: float = 1800) -> None:
        async def all_done() -> None:
            while not all(i in self.finished for i in ids):
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(all_done(), timeout)
        failed = [self.finished[i][1].error for i in ids if self.finished[i][1].kind != "done"]
        if failed:
            raise SystemExit(f"{len(failed)} jobs failed, e.g.: {failed[0]}")

    async def throughput(self, n: int) -> tuple[float, float, float]:
        """(clips per minute, wall seconds, CPU cores busy on average) for n jobs submitted at once."""
        t, cpu = time.time(), cpu_times()
        ids = await self.submit(n)
        await self.wait(ids)
        wall = max(self.finished[i][0] for i in ids) - t
        return n / wall * 60, wall, busy_cores(cpu, cpu_times())

    async def overhead(self, n: int) -> dict[str, float]:
        """Medians over n jobs run one at a time (seconds)."""
        rows: dict[str, list[float]] = {"e2e": [], "compose": [], "overhead": [], "to_start": [], "to_bot": []}
        for _ in range(n):
            [job_id] = await self.submit(1)
            await self.wait([job_id])
            end, event = self.finished[job_id]
            result: dict[str, Any] = event.result or {}
            e2e = end - self.submitted[job_id]
            worker = result.get("worker")
            compose = float(result["timings"]["total"])  # the engine's own time, the same for both backends
            rows["e2e"].append(e2e)
            rows["compose"].append(compose)
            rows["overhead"].append(e2e - compose)
            if worker:
                rows["to_start"].append(worker["started_at"] - self.submitted[job_id])
                rows["to_bot"].append(end - worker["finished_at"])
        return {k: statistics.median(v) for k, v in rows.items() if v}


def cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs together, from /proc/stat."""
    with open("/proc/stat") as fh:
        values = [int(v) for v in fh.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values) - idle, sum(values)


def busy_cores(before: tuple[int, int], after: tuple[int, int]) -> float:
    """How many of the machine's cores were busy on average between two `cpu_times` readings."""
    total = after[1] - before[1]
    return (after[0] - before[0]) / total * (os.cpu_count() or 1) if total else 0.0


async def measure(queue: JobQueue, settings: BotSettings, ck_hash: str, args: argparse.Namespace,
                  warm: int, tag: str) -> tuple[float, float, float, dict[str, float]]:
    """(median clips per minute, its wall seconds and CPU cores busy, overhead medians) over
    ``args.runs`` runs."""
    runner = Runner(queue, settings, ck_hash, args.length, tag)
    await queue.start()
    try:
        await runner.wait(await runner.submit(warm))  # load the checkpoint and SoundFont everywhere
        runs = [await runner.throughput(args.jobs) for _ in range(args.runs)]
        over = await runner.overhead(args.sequential)
    finally:
        await queue.stop()
    per_min, wall, busy = sorted(runs)[len(runs) // 2]
    return per_min, wall, busy, over


def celery_rows(tmp: Path, base: BotSettings, ck_hash: str, args: argparse.Namespace,
                batches: tuple[int, ...]) -> list[tuple[str, int, int, float, float, float, dict[str, float]]]:
    """Rows for Celery with 1 and 2 workers at each batch size, against one throwaway redis-server."""
    rows = []
    server = RedisServer(tmp)
    server.start()
    try:
        settings = dataclasses.replace(base, redis_url=Secret(server.url))
        for batch in batches:
            for count in (1, 2):
                wdir = tmp / f"celery-{count}-batch-{batch}"
                wdir.mkdir()
                workers = Workers(wdir, server.url, job_timeout_s=600, CHORUS_TORCH_THREADS=str(base.torch_threads),
                                  CHORUS_BATCH_MAX=str(batch), CHORUS_BATCH_WINDOW_MS=f"{base.batch_window_ms:g}")
                try:
                    workers.start(count)
                    queue = CeleryQueue(settings)
                    rows.append(("celery", count, batch, *asyncio.run(measure(queue, settings, ck_hash, args,
                                                                              warm=count, tag=wdir.name))))
                finally:
                    workers.close()
    finally:
        server.stop()
    return rows


def report(args: argparse.Namespace, base: BotSettings, results: list) -> None:
    print(f"checkpoint {args.checkpoint}, {args.jobs} jobs of {args.length:g} s clips, {os.cpu_count()} CPUs, "
          f"{base.torch_threads} torch thread(s) per worker, median of {args.runs} runs, "
          f"Celery batch window {base.batch_window_ms:g} ms")
    print(f"\n{'backend':<10}{'workers':>8}{'batch':>7}{'clips/min':>11}{'wall s':>9}{'CPU cores busy':>16}")
    for name, count, batch, per_min, wall, busy, _ in results:
        print(f"{name:<10}{count:>8}{batch:>7}{per_min:>11.1f}{wall:>9.1f}{busy:>10.2f} of {os.cpu_count()}")
    print(f"\nper job, {args.sequential} jobs one at a time (medians, seconds)")
    print(f"{'backend':<10}{'workers':>8}{'batch':>7}{'submit->clip':>14}{'compose':>9}{'overhead':>10}"
          f"{'->start':>9}{'end->bot':>10}")
    for name, count, batch, _, _, _, over in results:
        split = (f"{over['to_start']:>9.3f}{over['to_bot']:>10.3f}") if "to_start" in over else f"{'-':>9}{'-':>10}"
        print(f"{name:<10}{count:>8}{batch:>7}{over['e2e']:>14.3f}{over['compose']:>9.3f}{over['overhead']:>10.3f}"
              f"{split}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--checkpoint", type=Path, default=Path("checkpoints/jazz"))
    ap.add_argument("--jobs", type=int, default=12)
    ap.add_argument("--length", type=float, default=10.0, help="clip length in seconds")
    ap.add_argument("--sequential", type=int, default=4, help="jobs run one at a time for the overhead")
    ap.add_argument("--runs", type=int, default=3, help="throughput runs per backend (the median is shown)")
    ap.add_argument("--batch-max", type=int, default=None, help="the batch size when on (default CHORUS_BATCH_MAX)")
    args = ap.parse_args()
    exit_on_signals()  # SIGTERM ends it as Ctrl-C does: what it started is stopped
    ck = args.checkpoint.resolve()
    ck_hash = str(read_meta(ck)["content_hash"])
    results = []
    with tempfile.TemporaryDirectory(prefix="chorus-bench-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "checkpoints").mkdir()
        (tmp / "checkpoints" / "jazz").symlink_to(ck)
        base = dataclasses.replace(BotSettings.from_env(), checkpoints_dir=tmp / "checkpoints", data_dir=tmp / "data",
                                   job_timeout_s=600)
        batches = (1, max(2, args.batch_max or base.batch_max))
        for batch in batches:
            local = LocalQueue(base, workers=1, job_timeout_s=600, batch_max=batch)
            results.append(("local", 1, batch, *asyncio.run(measure(local, base, ck_hash, args, warm=1,
                                                                    tag=f"local-batch-{batch}"))))
        results += celery_rows(tmp, base, ck_hash, args, batches)
    report(args, base, results)


if __name__ == "__main__":
    main()
