"""Learning how soloists play their notes, from WJazzD's performed timing.

WJazzD gives every note its metrical place (bar, beat, tatum of the beat's division) and its
performed onset and duration in seconds, with the solo's beat track. Read through the beat
track into beats (`training.evaluation.realism.real_line`'s reading), that shows:

- **swing**: for each beat played as two eighths (division 2), the long:short ratio of the
  pair as played, ``(t2 - t1) / (next beat - t2)``; one median per solo, and the median of those
  per 30-bpm band of tempo (bands of 8 solos or more), which the arranger interpolates: soloists
  swing most around 160-200 bpm and less as the tempo rises (and in slow ballads, whose eighths
  are nearly even). A least-squares line over all solos is kept for reference;
- **placement**: how far on-beat notes land from the beat (mean and spread, in beats), and how
  far off-beat eighths spread around the solo's own swung place;
- **phrasing**: how many notes a phrase holds (a rest of over a beat, as written, ends one) and
  how long the rests between phrases are, as quantiles;
- **articulation**: a note's performed length ÷ the spacing to the next onset, as quantiles for
  eighth-like spacings (under 0.8 beat) and longer ones (0.8 to 2.5 beats); a phrase's last
  note (before a rest of over a beat) as its held length in beats.

`learn` returns the `engine.band.perform.Performance` the arranger plays the lead with; ``chorus
train-performance`` writes it into a checkpoint's ``meta.json["performance"]``.
"""
from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from engine.band.perform import QUANTILES, Performance
from training.corpus.performed import beats_of
from training.corpus.performed import solos as wjazzd_solos


def _solo(melody_csv: Path, beats_csv: Path) -> dict[str, list[float]] | None:
    """One solo's raw figures: eighth-pair ratios, placements, articulations, phrase ends."""
    melody = list(csv.DictReader(melody_csv.open()))
    beats = list(csv.DictReader(beats_csv.open()))
    if len(melody) < 20 or len(beats) < 8:
        return None
    beat_times = np.array([float(r["onset"]) for r in beats])
    on = np.array([float(r["onset"]) for r in melody])
    pos = beats_of(on, beat_times)
    end = beats_of(on + np.array([float(r["duration"]) for r in melody]), beat_times)
    out: dict[str, list[float]] = {"ratio": [], "onbeat": [], "offbeat": [], "short": [], "long": [], "held": []}
    for i, r in enumerate(melody):
        division, tatum = int(r["division"]), int(r["tatum"])
        whole = np.floor(pos[i] + 0.25)  # the beat this note belongs to (an early note still counts)
        if tatum == 1:
            out["onbeat"].append(float(pos[i] - whole))
        if division == 2 and tatum == 1 and i + 1 < len(melody) and int(melody[i + 1]["tatum"]) == 2 \
                and int(melody[i + 1]["division"]) == 2 and melody[i + 1]["beat"] == r["beat"]:
            t1, t2, t3 = pos[i], pos[i + 1], whole + 1.0
            if t1 < t2 < t3:
                out["ratio"].append(float((t2 - t1) / (t3 - t2)))
                out["offbeat"].append(float(t2 - whole))
        if i + 1 < len(melody):
            spacing = pos[i + 1] - pos[i]
            rest = pos[i + 1] - end[i]
            if rest > 1.0:
                out["held"].append(float(end[i] - pos[i]))
            elif 0.05 < spacing < 0.8:
                out["short"].append(float((end[i] - pos[i]) / spacing))
            elif 0.8 <= spacing < 2.5:
                out["long"].append(float((end[i] - pos[i]) / spacing))
    return out


def _phrases(solos: list[tuple[Path, Path]]) -> dict[str, tuple[float, ...]]:
    """Quantiles of notes per phrase and of the rests between phrases (over a beat), as written."""
    from training.corpus.performed import real_line

    sizes, rests = [], []
    for melody, beats in solos:
        line = real_line(melody, beats, "composition")
        size = 1
        for a, b in zip(line.notes, line.notes[1:], strict=False):
            gap = b[0] - (a[0] + a[1])
            if gap > 1.0:
                sizes.append(size)
                rests.append(gap)
                size = 0
            size += 1
    q = [i / (QUANTILES - 1) for i in range(QUANTILES)]
    if not sizes:
        return {}
    return {"phrase_notes": tuple(round(float(x), 3) for x in np.quantile(np.clip(sizes, 1, 200), q)),
            "rest_beats": tuple(round(float(x), 3) for x in np.quantile(np.clip(rests, 1.0, 16.0), q))}


def _binned(tempos: list[float], ratios: list[float], width: float = 30.0, least: int = 8
            ) -> tuple[tuple[float, float], ...]:
    """(tempo, median ratio) of the solos in each ``width``-bpm bin holding at least ``least`` of
    them, at the bin's median tempo: the curve the arranger interpolates."""
    out = []
    t, r = np.array(tempos), np.array(ratios)
    for lo in np.arange(60.0, 400.0, width):
        inside = (t >= lo) & (t < lo + width)
        if inside.sum() >= least:
            out.append((round(float(np.median(t[inside])), 1), round(float(np.median(r[inside])), 3)))
    return tuple(out)


def learn(solos: Iterable[tuple[Path, Path, float]]) -> Performance:
    """The performance model of ``solos`` ((melody CSV, beats CSV, tempo) each)."""
    tempos, ratios, solos_seen = [], [], []
    pooled: dict[str, list[float]] = {"onbeat": [], "offbeat": [], "short": [], "long": [], "held": []}
    for melody, beats, tempo in solos:
        got = _solo(melody, beats)
        if got is None:
            continue
        solos_seen.append((melody, beats))
        if len(got["ratio"]) >= 8:
            tempos.append(tempo)
            ratios.append(float(np.median(np.clip(got["ratio"], 0.5, 4.0))))
        if got["offbeat"]:  # an off-beat's spread around the solo's own swung place
            got["offbeat"] = list(np.array(got["offbeat"]) - float(np.median(got["offbeat"])))
        for k in pooled:
            pooled[k] += got[k]
    slope, intercept = np.polyfit(tempos, ratios, 1) if len(tempos) >= 3 else (0.0, 1.5)
    table = _binned(tempos, ratios)
    q = [i / (QUANTILES - 1) for i in range(QUANTILES)]

    def quantiles(values: list[float], lo: float, hi: float) -> tuple[float, ...]:
        v = np.clip(np.array(values or [1.0]), lo, hi)
        return tuple(round(float(x), 4) for x in np.quantile(v, q))

    on, off = np.array(pooled["onbeat"] or [0.0]), np.array(pooled["offbeat"] or [0.0])
    lag = round(float(np.median(on)), 4)
    return Performance(
        swing_intercept=round(float(intercept), 5), swing_slope=round(float(slope), 7),
        onbeat_mean=lag, onbeat_sd=round(float(np.clip(np.std(on), 0, 0.1)), 4),
        # an off-beat lags with its beat, so the pair keeps its ratio; its own spread around that
        offbeat_mean=lag, offbeat_sd=round(float(np.clip(np.std(off), 0, 0.1)), 4),
        swing_by_tempo=table, **_phrases(solos_seen),
        short=quantiles(pooled["short"], 0.1, 1.05), long=quantiles(pooled["long"], 0.1, 1.05),
        held=quantiles(pooled["held"], 0.25, 4.0), solos=len(tempos),
        swing_points=tuple((round(t, 1), round(r, 3)) for t, r in sorted(zip(tempos, ratios, strict=True))))


def install_performance(checkpoint: Path, corpus_dir: Path, say=lambda _: None) -> Performance:
    """``chorus train-performance``: learn the feel from the checkpoint's own WJazzD training solos
    and write it into its ``meta.json["performance"]`` (the weights are written back unchanged).

    Raises:
        EngineError: the checkpoint was not trained on WJazzD solos.
    """
    from engine.errors import EngineError
    from engine.models.checkpoint import load_checkpoint, save_checkpoint

    ck = load_checkpoint(checkpoint)
    solos = wjazzd_solos(corpus_dir, set(ck.meta.get("corpus", {}).get("train_recordings", [])), trained=True)
    if not solos:
        raise EngineError(f"{checkpoint} was not trained on WJazzD solos in {corpus_dir / 'wjazzd'}")
    perf = learn(solos)
    say(f"learned from {perf.solos} solos: swing {perf.swing(120):.2f} at 120 bpm, {perf.swing(240):.2f} at 240; "
        f"median length/spacing {perf.short[10]:.2f} (eighths), {perf.long[10]:.2f} (longer)")
    meta = {k: v for k, v in ck.meta.items() if k not in ("content_hash", "size_bytes", "model_config", "vocab", "harmony")}
    meta["performance"] = perf.to_dict()
    if ck.harmony is not None:
        meta["harmony"] = {k: v for k, v in ck.meta.get("harmony", {}).items() if k != "config"}
    written = save_checkpoint(checkpoint, ck.model, meta, ck.extra, harmony=ck.harmony)
    say(f"performance written into {checkpoint} (content hash {written['content_hash'][:12]})")
    return perf
