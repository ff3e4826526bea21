"""Compose speed per stage: warm 30 s and 120 s jazz clips, and a cold ``chorus compose jazz 30s``.

Usage: python bench/compose.py [--checkpoint checkpoints/jazz] [--runs 7] [--cold-runs 3]
Targets on the 2-core CPU machine: warm 30 s total median <= 1.5 s; cold process <= 6 s.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STAGES = ("sample", "decode_arrange", "midi", "render", "encode", "picture", "total")


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def table(title: str, runs: list[dict[str, float]]) -> None:
    print(f"\n{title} ({len(runs)} runs)")
    print(f"  {'stage':<16}{'median s':>10}{'p95 s':>10}")
    for stage in STAGES:
        vals = [r.get(stage, 0.0) for r in runs]
        print(f"  {stage:<16}{statistics.median(vals):>10.3f}{pct(vals, 0.95):>10.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--checkpoint", type=Path, default=Path("checkpoints/jazz"))
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--cold-runs", type=int, default=3)
    args = ap.parse_args()

    from engine.compose import Composer
    from engine.request import ComposeRequest
    from engine.settings import Settings

    settings = Settings.from_env()
    composer = Composer(settings)
    build = lambda seconds, seed: ComposeRequest.build("jazz", seconds, settings, ["jazz"], seed=seed)  # noqa: E731
    composer.compose(build(30, 0), checkpoint=args.checkpoint)  # warm-up: load checkpoint, SoundFont
    print(f"checkpoint {args.checkpoint}, torch threads {settings.torch_threads}")
    for seconds in (30, 120):
        runs = []
        for i in range(args.runs):
            result = composer.compose(build(seconds, 1000 + i), checkpoint=args.checkpoint)
            runs.append(result.timings)
        table(f"warm {seconds} s clip", runs)

    walls = []
    with tempfile.TemporaryDirectory() as out:
        for i in range(args.cold_runs):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "bot.cli", "compose", "jazz", "30s", "--checkpoint", str(args.checkpoint),
                            "--seed", str(i), "--out", out], check=True, capture_output=True)
            walls.append(time.perf_counter() - t)
    print(f"\ncold `chorus compose jazz 30s` process ({len(walls)} runs): median {statistics.median(walls):.2f} s, "
          f"p95 {pct(walls, 0.95):.2f} s")


if __name__ == "__main__":
    main()
