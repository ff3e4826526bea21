"""Harmony and form figures (METRICS.md, "Harmony and form") of composed clips, and of the real charts.

Usage:
  python bench/harmony.py                 # jazz 48 s @160 seeds 1000..1029, folk 40 s @120 seeds 1000..1019
  python bench/harmony.py --reference     # the iReal+Impro-Visor 20% test split and the WJazzD charts

The clips are composed and scored by `training.evaluation.harmony` (what ``chorus eval`` reports). The
figures of the code before the harmony model were taken with this script's first version
(commit 8ed8e61) against the older checkout.
"""
from __future__ import annotations

import argparse
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
JAZZ = ("jazz", range(1000, 1030), 48.0, 160.0)
FOLK = ("folk", range(1000, 1020), 40.0, 120.0)


def measure(style: str, seeds, seconds: float, tempo: float, checkpoints_dir: Path | None = None,
            corpus_dir: Path = CORPUS) -> dict[str, float]:
    """`training.evaluation.harmony.measure` with the checkpoints in ``checkpoints_dir``."""
    from engine.settings import Settings
    from training.evaluation.harmony import measure as measure_clips

    settings = Settings(checkpoints_dir=checkpoints_dir.resolve()) if checkpoints_dir else Settings()
    return measure_clips(style, seeds, seconds, tempo, corpus_dir, settings=settings)


def reference(corpus_dir: Path = CORPUS) -> dict[str, dict[str, float]]:
    """The real charts' figures: the reference test split and the WJazzD charts (div4 over 30 each)."""
    from training.corpus.charts import read_wjazzd_charts
    from training.corpus.reference_charts import read_reference_charts, split_charts
    from training.evaluation import harmony_metrics as hm

    bigram = hm.reference_bigram(Path(corpus_dir))
    _train, test = split_charts(read_reference_charts(Path(corpus_dir))[0])
    wjazzd = read_wjazzd_charts(Path(corpus_dir) / "wjazzd")[0]
    out = {}
    for name, charts in (("standards (test split)", test), ("wjazzd charts", wjazzd)):
        pieces = [c.bars for c in charts]
        report = hm.harmony_report(pieces, None, bigram)
        report["div4"] = hm.div4(pieces[:30])
        out[name] = report
    return out


def show(name: str, report: dict[str, float], keys: tuple[str, ...]) -> None:
    print(f"{name} ({int(report['pieces'])} pieces): " + ", ".join(f"{k} {report[k]:.3f}" for k in keys))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reference", action="store_true", help="score the real charts instead of composing")
    ap.add_argument("--checkpoints", type=Path, default=None, help="checkpoints folder (default: settings')")
    ap.add_argument("--corpus", type=Path, default=CORPUS)
    args = ap.parse_args()
    chord_keys = ("bigram_ll", "ii_v", "v_i", "key_changes", "key_fit", "div4")
    if args.reference:
        for name, report in reference(args.corpus).items():
            show(name, report, chord_keys)
        return
    jazz = measure(*JAZZ, checkpoints_dir=args.checkpoints, corpus_dir=args.corpus)
    show("jazz 48s tempo 160 seeds 1000..1029", jazz, chord_keys + ("rep5",))
    folk = measure(*FOLK, checkpoints_dir=args.checkpoints, corpus_dir=args.corpus)
    show("folk 40s tempo 120 seeds 1000..1019", folk, ("rep5", "key_changes"))


if __name__ == "__main__":
    main()
