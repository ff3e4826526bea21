"""Compose speed: the warm 30 s jazz clip, unpipelined (render, then encode) and pipelined, in one run;
a warm 120 s clip; a cold ``chorus compose jazz 30s``.

Usage: python bench/compose.py [--checkpoint checkpoints/jazz] [--rounds 5] [--burst 4] [--cold-runs 5]

Each round composes, with the same seeds: one clip on the old path (render the whole clip, then
encode it: ``Composer(stream_audio=False)``), one clip streamed (ffmpeg started while rendering
and fed as the PCM is ready), and a burst of ``--burst`` single-clip jobs through the worker's
`engine.compose.pipeline.Pipeline` (at most two batches in flight, the next sent once the previous is
sampled, as `bot.queues.local.LocalQueue` does). The three alternate, so a machine loaded by something
else slows them alike; the ratio is the figure to compare. A pipelined clip's time is the
interval between two clips delivered in a burst (the pipeline full), and the burst's wall time
per clip (filling it included).
Targets on the quiet 2-core CPU machine: pipelined <= 0.5 s per 30 s clip (<= ~0.68 x the old
path); cold process <= 2.0 s.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

STAGES = ("sample", "decode_arrange", "midi", "render", "encode", "picture", "total")


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def table(title: str, runs: list[dict[str, float]]) -> None:
    print(f"\n{title} ({len(runs)} clips)")
    print(f"  {'stage':<16}{'median s':>10}{'p95 s':>10}")
    for stage in STAGES:
        vals = [r.get(stage, 0.0) for r in runs]
        print(f"  {stage:<16}{statistics.median(vals):>10.3f}{pct(vals, 0.95):>10.3f}")


def burst(pipeline: Any, requests: list[Any], checkpoint: Path) -> tuple[list[float], float, list[dict[str, float]]]:
    """Run single-clip jobs through the pipeline as a busy local worker gets them. Returns the
    intervals between deliveries, the wall time from the first submit to the last delivery, and
    each clip's timings."""
    slots = threading.Semaphore(2)  # batches in flight (bot.queues.local.PIPELINE_BATCHES)
    delivered: list[float] = []
    timings: list[dict[str, float]] = []
    done = threading.Event()

    def deliver(_index: int, outcome: Any) -> None:
        delivered.append(time.perf_counter())
        timings.append({} if isinstance(outcome, Exception) else outcome.timings)
        if isinstance(outcome, Exception):
            print(f"bench: a clip failed: {outcome!r}", file=sys.stderr)
        slots.release()
        if len(delivered) == len(requests):
            done.set()

    start = time.perf_counter()
    for req in requests:
        sampled = threading.Event()
        slots.acquire()
        pipeline.submit([(req, checkpoint, None)], deliver, sampled=sampled.set)
        sampled.wait()  # the worker says "ready" once its batch is sampled
    done.wait()
    return [b - a for a, b in zip(delivered[:-1], delivered[1:], strict=True)], delivered[-1] - start, timings


def warm_30s(args: argparse.Namespace, settings: Any, build: Any) -> None:
    from engine.compose.composer import Composer
    from engine.compose.pipeline import Pipeline

    old, new = Composer(settings, stream_audio=False), Composer(settings)
    for c in (old, new):  # warm-up: checkpoint, SoundFont, ffmpeg
        c.compose(build(30, 0), checkpoint=args.checkpoint)
    olds, streamed, intervals, per_clip, piped = [], [], [], [], []
    cpu = {"old": 0.0, "streamed": 0.0, "pipelined": 0.0}  # CPU seconds: this process and its ffmpegs
    with Pipeline(new) as pipeline:
        burst(pipeline, [build(30, 1)], args.checkpoint)  # warm-up: the pipeline's threads
        for r in range(args.rounds):
            seed = 1000 + r * args.burst
            with cpu_into(cpu, "old"):
                olds.append(old.compose(build(30, seed), checkpoint=args.checkpoint).timings)
            with cpu_into(cpu, "streamed"):
                streamed.append(new.compose(build(30, seed), checkpoint=args.checkpoint).timings)
            with cpu_into(cpu, "pipelined"):
                gaps, wall, timings = burst(pipeline, [build(30, seed + i) for i in range(args.burst)], args.checkpoint)
            intervals += gaps
            per_clip.append(wall / args.burst)
            piped += timings
    table("warm 30 s clip, old path: render, then encode", olds)
    table("warm 30 s clip, streamed (ffmpeg fed while the picture is drawn)", streamed)
    table(f"warm 30 s clip, pipelined, bursts of {args.burst} (stages overlap other clips; total includes waiting)", piped)
    m_old = statistics.median(r["total"] for r in olds)
    m_stream = statistics.median(r["total"] for r in streamed)
    m_pipe, m_burst = statistics.median(intervals), statistics.median(per_clip)
    print("\nwarm 30 s jazz clip, median wall time per clip")
    print(f"  old path (render, then encode)    {m_old:7.3f} s")
    print(f"  streamed, one clip alone          {m_stream:7.3f} s   ratio {m_stream / m_old:5.2f}")
    print(f"  pipelined, pipeline full          {m_pipe:7.3f} s   ratio {m_pipe / m_old:5.2f}   (target <= 0.5 s, <= ~0.68)")
    print(f"  pipelined, burst wall / clips     {m_burst:7.3f} s   ratio {m_burst / m_old:5.2f}")
    clips = {"old": args.rounds, "streamed": args.rounds, "pipelined": args.rounds * args.burst}
    print(f"CPU seconds per clip (process and ffmpeg; the floor of a pipelined clip on {os.cpu_count()} idle cores "
          "is this over the cores): " + ", ".join(f"{k} {v / clips[k]:.3f}" for k, v in cpu.items()))


@contextmanager
def cpu_into(totals: dict[str, float], key: str) -> Iterator[None]:
    """Add the CPU time (user and system, this process and its waited-for children) of the block."""
    before = os.times()
    yield
    after = os.times()
    totals[key] += sum(after[i] - before[i] for i in range(4))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", type=Path, default=Path("checkpoints/jazz"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--burst", type=int, default=4)
    ap.add_argument("--long-runs", type=int, default=3, help="warm 120 s clips (0: none)")
    ap.add_argument("--cold-runs", type=int, default=5)
    args = ap.parse_args()

    from engine.compose.composer import Composer
    from engine.compose.request import ComposeRequest
    from engine.settings import Settings

    settings = Settings.from_env()
    build = lambda seconds, seed: ComposeRequest.build("jazz", seconds, settings, ["jazz"], seed=seed)  # noqa: E731
    print(f"checkpoint {args.checkpoint}, torch threads {settings.torch_threads}, synth threads {settings.synth_threads}")
    warm_30s(args, settings, build)
    if args.long_runs:
        composer = Composer(settings)
        table("warm 120 s clip, streamed", [composer.compose(build(120, 2000 + i), checkpoint=args.checkpoint).timings
                                            for i in range(args.long_runs)])

    walls = []
    with tempfile.TemporaryDirectory() as out:
        for i in range(args.cold_runs):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "bot.cli", "compose", "jazz", "30s", "--checkpoint", str(args.checkpoint),
                            "--seed", str(i), "--out", out], check=True, capture_output=True)
            walls.append(time.perf_counter() - t)
    if walls:
        print(f"\ncold `chorus compose jazz 30s` process ({len(walls)} runs): median {statistics.median(walls):.2f} s, "
              f"p95 {pct(walls, 0.95):.2f} s  (target <= 2.0 s)")


if __name__ == "__main__":
    main()
