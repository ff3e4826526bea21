"""How often the comping sounds above the soloist: the share of lead notes during which a comping
note higher than the lead's sounds (issue 23: a pianist comps under the soloist). Clips are
sampled and arranged without audio; prints the median, the spread and the worst clip.

    python bench/comping.py [--style jazz] [--clips 52] [--seconds 30]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engine.compose.composer import Composer  # noqa: E402
from engine.compose.request import ComposeRequest  # noqa: E402
from engine.settings import Settings  # noqa: E402
from training.evaluation.realism import comping_above_share as above_share  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--style", default="jazz")
    ap.add_argument("--clips", type=int, default=52)
    ap.add_argument("--seconds", type=float, default=30.0)
    args = ap.parse_args()
    composer = Composer(Settings.from_env(), numpy=True)
    jobs = [(ComposeRequest(args.style, args.seconds, seed=700 + i), None, None) for i in range(args.clips)]
    shares = []
    for _, plan in composer.sampled(jobs):
        score, *_ = composer.realise(plan, plan.req)
        shares.append(above_share(score))
    shares.sort()
    print(f"{args.style}: {len(shares)} clips of {args.seconds:g} s; lead notes with comping above them: "
          f"median {100 * median(shares):.1f}%, quartiles {100 * shares[len(shares) // 4]:.1f}-"
          f"{100 * shares[3 * len(shares) // 4]:.1f}%, worst {100 * shares[-1]:.1f}%")


if __name__ == "__main__":
    main()
