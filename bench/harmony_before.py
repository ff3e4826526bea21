"""Harmony and form figures (METRICS.md, "Harmony and form") of composed clips, and of the real charts.

Usage:
  python bench/harmony_before.py                 # jazz 48 s @160 seeds 1000..1029, folk 40 s @120 seeds 1000..1019
  python bench/harmony_before.py --reference     # the iReal+Impro-Visor 20% test split and the WJazzD charts

It composes with whatever ``engine`` is first on ``sys.path``, so it measures old code too:
``PYTHONPATH=/work/wt-before python /work/main/bench/harmony_before.py --checkpoints /work/wt-before/checkpoints``.
The metrics come from this checkout's ``training`` (added to the ``training`` package path when the
product being measured lacks them). `measure` is the function ``chorus eval`` calls.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]  # this checkout (has training/harmony_metrics.py)
CORPUS = HERE.parent / "shared" / "corpus"
JAZZ = ("jazz", range(1000, 1030), 48.0, 160.0)
FOLK = ("folk", range(1000, 1020), 40.0, 120.0)


def _metrics():  # noqa: ANN202 - a module
    """``training.harmony_metrics``, from the measured product or, failing that, from this checkout."""
    if str(HERE) not in sys.path:
        sys.path.append(str(HERE))
    import training
    import training.corpus

    for pkg, sub in ((training, "training"), (training.corpus, "training/corpus")):
        if str(HERE / sub) not in pkg.__path__:
            pkg.__path__.append(str(HERE / sub))
    import training.harmony_metrics as hm

    return hm


def lead_notes(score, n_bars: int = 32) -> list[tuple[float, int]]:  # noqa: ANN001 - engine.score.Score
    """(onset_beats, pitch) of the lead part's notes in the score's first ``n_bars`` bars."""
    lead = score.part("Lead") or score.parts[0]
    end = score.bars[n_bars][0] if len(score.bars) > n_bars else math.inf
    return [(n.start, n.pitch) for n in lead.notes if n.start < end]


def measure(style: str, seeds: range | list[int], seconds: float, tempo: float,
            checkpoints_dir: Path | None = None, corpus_dir: Path = CORPUS) -> dict[str, float]:
    """Compose one clip per seed and score the set (first 32 bars each).

    Returns:
        `harmony_report`'s dict: bigram_ll, ii_v, v_i, key_changes, key_fit, div4, rep5, pieces.
    """
    from engine.compose import Composer
    from engine.request import ComposeRequest
    from engine.settings import Settings

    hm = _metrics()
    settings = Settings(checkpoints_dir=checkpoints_dir) if checkpoints_dir else Settings()
    composer = Composer(settings)
    styles = composer.styles()
    jobs = [(ComposeRequest.build(style, seconds, settings, styles, tempo=tempo, seed=s), None, None) for s in seeds]
    bars, leads = [], []
    for result in composer.compose_many(jobs):
        if isinstance(result, Exception):
            raise result
        bars.append(hm.parse_changes(result.summary["changes"])[:32])
        leads.append(lead_notes(result.score))
    return hm.harmony_report(bars, leads, hm.reference_bigram(Path(corpus_dir)))


def reference(corpus_dir: Path = CORPUS) -> dict[str, dict[str, float]]:
    """The real charts' figures: the reference test split and the WJazzD charts (div4 over 30 each)."""
    hm = _metrics()
    from training.corpus.charts import read_wjazzd_charts
    from training.corpus.reference_charts import read_reference_charts, split_charts

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
    import engine

    print(f"engine: {Path(engine.__file__).parent}")
    jazz = measure(*JAZZ, checkpoints_dir=args.checkpoints, corpus_dir=args.corpus)
    show("jazz 48s tempo 160 seeds 1000..1029", jazz, chord_keys + ("rep5",))
    folk = measure(*FOLK, checkpoints_dir=args.checkpoints, corpus_dir=args.corpus)
    show("folk 40s tempo 120 seeds 1000..1019", folk, ("rep5", "key_changes"))


if __name__ == "__main__":
    main()
