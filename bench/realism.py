"""The realism test of `chorus eval` on its own (training/evaluation/realism.py): can a logistic regression
tell the shipped jazz checkpoint's lead lines from held-out WJazzD solos, as written
(composition) and as played (performance)? Prints both views, the real-vs-real floor and the
features that differ most.

    python bench/realism.py [--checkpoint checkpoints/jazz] [--solos 51] [--seed 0] [--json]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engine.models.checkpoint import read_meta  # noqa: E402
from engine.settings import Settings  # noqa: E402
from training.evaluation.realism import format_realism, realism_report  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, default=REPO / "checkpoints" / "jazz")
    ap.add_argument("--solos", type=int, default=51, help="held-out solos, and as many clips at their tempos")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    trained = set(read_meta(args.checkpoint)["corpus"]["train_recordings"])
    report = realism_report(args.checkpoint, trained, Settings.from_env().corpus_dir, args.solos, args.seed)
    print(json.dumps(report, indent=2) if args.json else "\n".join(format_realism(report)))


if __name__ == "__main__":
    main()
