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
from dataclasses import replace
from pathlib import Path

import numpy as np

from engine.band.perform import QUANTILES, Performance
from training.corpus.performed import beats_of, midi_of
from training.corpus.performed import solos as wjazzd_solos
from training.fit.dynamics import learn_dynamics


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
    out: dict[str, list] = {"ratio": [], "onbeat": [], "offbeat": [], "short": [], "long": [], "held": [],
                            "placed": [], "spaced": []}
    for i, r in enumerate(melody):
        division, tatum = int(r["division"]), int(r["tatum"])
        kind = "on" if tatum == 1 else f"{division}:{tatum}" if division in (2, 3, 4) else None
        if kind is not None:  # played off its written place by how much, in beats
            written = (tatum - 1) / division
            out["placed"].append((kind, float(pos[i] - np.round(pos[i] - written) - written)))
        whole = np.floor(pos[i] + 0.25)  # the beat this note belongs to (an early note still counts)
        if tatum == 1:
            out["onbeat"].append(float(pos[i] - whole))
        if division == 2 and tatum == 1 and i + 1 < len(melody) and int(melody[i + 1]["tatum"]) == 2 \
                and int(melody[i + 1]["division"]) == 2 and melody[i + 1]["beat"] == r["beat"]:
            t1, t2, t3 = pos[i], pos[i + 1], whole + 1.0
            if t1 < t2 < t3:
                out["ratio"].append(float((t2 - t1) / (t3 - t2)))
                out["placed"].append(("pair", float(t2 - t1 - 0.5)))  # the off-beat after its own on-beat
                out["offbeat"].append(float(t2 - whole))
        if i + 1 < len(melody):
            spacing = pos[i + 1] - pos[i]
            rest = pos[i + 1] - end[i]
            if rest <= 1.0 and spacing > 0.05:
                out["spaced"].append((float(spacing), float((end[i] - pos[i]) / spacing)))
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


SPACINGS = ((0.05, 0.3), (0.3, 0.45), (0.45, 0.6), (0.6, 0.8), (0.8, 1.2), (1.2, 2.5), (2.5, 99.0))  # beats
_Q = [i / (QUANTILES - 1) for i in range(QUANTILES)]


def _quantiles(values, lo: float, hi: float, weights=None) -> tuple[float, ...]:
    v = np.clip(np.asarray(values if len(values) else [1.0], dtype=float), lo, hi)
    if weights is None or not len(values):
        return tuple(round(float(x), 4) for x in np.quantile(v, _Q))
    return tuple(round(float(x), 4) for x in np.quantile(v, _Q, weights=np.asarray(weights), method="inverted_cdf"))


def _placement(placed: list[tuple[float, str, float]], width: float = 30.0, least: int = 300):
    """Per place kind, per ``width``-bpm tempo band with ``least`` notes or more (else all tempos
    as one band): (median tempo, quantiles of how far notes land off their written place). The
    outer 1% either side is cut (beat-track slips)."""
    out = []
    for kind in sorted({k for _, k, _ in placed}):
        tempo = np.array([t for t, k, _ in placed if k == kind])
        dev = np.array([d for _, k, d in placed if k == kind])
        if len(dev) < least:
            continue
        lo, hi = np.quantile(dev, [0.01, 0.99])
        bands = []
        for start in np.arange(60.0, 400.0, width):
            inside = (tempo >= start) & (tempo < start + width)
            if inside.sum() >= least:
                bands.append((round(float(np.median(tempo[inside])), 1), _quantiles(dev[inside], lo, hi)))
        out.append((kind, tuple(bands) or ((round(float(np.median(tempo)), 1), _quantiles(dev, lo, hi)),)))
    return tuple(out)


def _neighbours(placed: list[tuple[float, str, float]], solo: list[int], width: float = 30.0) -> float:
    """Lag-1 correlation of neighbouring notes' placements in one solo, each read as a normal
    score within its place kind and tempo band (the copula `Performance.onsets` draws with)."""
    from statistics import NormalDist

    kept = [i for i, (_, k, _) in enumerate(placed) if k != "pair"]  # a pair's entry is not a note of its own
    kinds = np.array([f"{placed[i][1]}@{int((placed[i][0] - 60) // width)}" for i in kept])  # within its band
    dev = np.array([placed[i][2] for i in kept])
    solo = [solo[i] for i in kept]
    z = np.zeros(len(dev))
    for kind in set(kinds.tolist()):
        idx = np.flatnonzero(kinds == kind)
        ranks = np.empty(len(idx))
        ranks[np.argsort(dev[idx], kind="stable")] = np.arange(len(idx))
        z[idx] = [NormalDist().inv_cdf((r + 0.5) / len(idx)) for r in ranks]
    same = np.array(solo[1:]) == np.array(solo[:-1])
    if same.sum() < 10:
        return 0.0
    return round(float(np.corrcoef(z[:-1][same], z[1:][same])[0, 1]), 3)


def _articulation(spaced: list[tuple[float, float, float]]):
    """Per band of played spacing (`SPACINGS`), quantiles of length / spacing, every solo weighing
    the same (``spaced``: spacing, length / spacing, the note's weight)."""
    arr = np.array(spaced or [(1.0, 1.0, 1.0)])
    out = []
    for lo, hi in SPACINGS:
        inside = (arr[:, 0] >= lo) & (arr[:, 0] < hi)
        if inside.sum() >= 50:
            out.append((lo, hi, _quantiles(arr[inside, 1], 0.1, 1.05, arr[inside, 2])))
    return tuple(out)


def learn(solos: Iterable[tuple[Path, Path, float]]) -> Performance:
    """The performance model of ``solos`` ((melody CSV, beats CSV, tempo) each)."""
    tempos, ratios, solos_seen = [], [], []
    pooled: dict[str, list[float]] = {"onbeat": [], "offbeat": [], "short": [], "long": [], "held": []}
    placed: list[tuple[float, str, float]] = []
    spaced: list[tuple[float, float]] = []
    solo: list[int] = []  # which solo each placed note is of
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
        placed += [(tempo, kind, dev) for kind, dev in got["placed"]]
        solo += [len(solos_seen)] * len(got["placed"])
        spaced += [(a, b, 1.0 / len(got["spaced"])) for a, b in got["spaced"]]  # each solo weighs the same
    slope, intercept = np.polyfit(tempos, ratios, 1) if len(tempos) >= 3 else (0.0, 1.5)
    table = _binned(tempos, ratios)
    on, off = np.array(pooled["onbeat"] or [0.0]), np.array(pooled["offbeat"] or [0.0])
    lag = round(float(np.median(on)), 4)
    return Performance(
        swing_intercept=round(float(intercept), 5), swing_slope=round(float(slope), 7),
        onbeat_mean=lag, onbeat_sd=round(float(np.clip(np.std(on), 0, 0.1)), 4),
        # an off-beat lags with its beat, so the pair keeps its ratio; its own spread around that
        offbeat_mean=lag, offbeat_sd=round(float(np.clip(np.std(off), 0, 0.1)), 4),
        swing_by_tempo=table, **_phrases(solos_seen),
        short=_quantiles(pooled["short"], 0.1, 1.05), long=_quantiles(pooled["long"], 0.1, 1.05),
        held=_quantiles(pooled["held"], 0.25, 4.0), solos=len(tempos),
        placement=_placement(placed), placement_rho=_neighbours(placed, solo), articulation=_articulation(spaced),
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
    midis = midi_of(corpus_dir)
    perf = replace(perf, **learn_dynamics((m, midis[m]) for m, _, _ in solos if m in midis))
    say(f"learned from {perf.solos} solos: swing {perf.swing(120):.2f} at 120 bpm, {perf.swing(240):.2f} at 240; "
        f"median length/spacing {perf.short[10]:.2f} (eighths), {perf.long[10]:.2f} (longer); dynamics from "
        f"{perf.vel_solos} solos' velocities: phrase level sd {perf.vel_phrase_sd:.1f}, last note {perf.vel_last:+.1f}")
    meta = {k: v for k, v in ck.meta.items() if k not in ("content_hash", "size_bytes", "model_config", "vocab", "harmony")}
    meta["performance"] = perf.to_dict()
    if ck.harmony is not None:
        meta["harmony"] = {k: v for k, v in ck.meta.get("harmony", {}).items() if k != "config"}
    written = save_checkpoint(checkpoint, ck.model, meta, ck.extra, harmony=ck.harmony)
    say(f"performance written into {checkpoint} (content hash {written['content_hash'][:12]})")
    return perf
