"""Harmony and form of composed clips against real music (``chorus eval``'s ``harmony`` block).

Clips are composed the way a user gets them (`engine.compose.composer.Composer`, seeds 1000 onwards; jazz
48 s at 160 bpm, folk 40 s at 120 bpm, bach 16 bars of 4/4 at 72 bpm), and their first 32 bars are scored with
`training.evaluation.harmony_metrics`: the changes printed in the summary, and the lead part's notes. The
reference side is the held-out pieces given to ``chorus eval``: their own chord annotations and
melodies, first 32 bars each.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from engine.music.leadsheet import LeadSheet
from training.evaluation import harmony_metrics as hm

PROTOCOL = {"jazz": (48.0, 160.0), "folk": (40.0, 120.0), "bach": (16 * 4 * 60 / 72.0, 72.0)}  # seconds, bpm
FIRST_SEED = 1000


def lead_notes(score, n_bars: int = 32) -> list[tuple[float, int]]:  # noqa: ANN001 - engine.band.score.Score
    """(onset_beats, pitch) of the lead part's notes in the score's first ``n_bars`` bars."""
    lead = score.part("Lead") or score.parts[0]
    end = score.bars[n_bars][0] if len(score.bars) > n_bars else math.inf
    return [(n.start, n.pitch) for n in lead.notes if n.start < end]


def compose_set(style: str, seeds, seconds: float, tempo: float, checkpoint: Path | None = None,
                settings: Any = None) -> tuple[list, list]:
    """(changes per clip, lead notes per clip), first 32 bars each, of one clip per seed."""
    from engine.compose.composer import Composer
    from engine.compose.request import ComposeRequest
    from engine.settings import Settings

    settings = settings or Settings()
    composer = Composer(settings)
    # the notes as composed (feel grid): the motif and form metrics are about what is written, as
    # WJazzD's are about its metrical places; the played lead's placement would hide every restatement
    jobs = [(ComposeRequest.build(style, seconds, settings, [style], tempo=tempo, seed=s, feel="grid"), checkpoint,
             None) for s in seeds]
    bars, leads = [], []
    for result in composer.compose_many(jobs):
        if isinstance(result, Exception):
            raise result
        bars.append(hm.parse_changes(result.summary["changes"])[:32])
        leads.append(lead_notes(result.score))
    return bars, leads


def measure(style: str, seeds, seconds: float, tempo: float, corpus_dir: Path,
            checkpoint: Path | None = None, settings: Any = None) -> dict[str, float]:
    """`harmony_metrics.harmony_report` of one clip per seed."""
    bars, leads = compose_set(style, seeds, seconds, tempo, checkpoint, settings)
    return hm.harmony_report(bars, leads, hm.reference_bigram(Path(corpus_dir)))


def sheet_bars(sheet: LeadSheet, n_bars: int = 32) -> tuple[list, list[tuple[float, int]]]:
    """A real piece's chord bars and melody (onset beats, pitch), first ``n_bars`` bars."""
    bars, notes, t = [], [], 0.0
    for m in sheet.measures[:n_bars]:
        chords = tuple(span.chord for span in m.chords if not span.chord.is_nc)
        if chords:
            bars.append(chords)
        notes += [(t + n.onset, n.pitch) for n in m.notes]
        t += m.beats
    return bars, notes


def harmony_block(ck, style: str, refs: list[LeadSheet], corpus_dir: Path, samples: int) -> dict[str, Any]:
    """The ``harmony`` block of ``chorus eval --json``: each metric generated vs reference, and the
    teacher-forced chord NLL against the chord bigram (from the checkpoint's training report)."""
    seconds, tempo = PROTOCOL.get(style, PROTOCOL["jazz"])
    bigram = hm.reference_bigram(Path(corpus_dir))
    gen_bars, gen_leads = compose_set(style, range(FIRST_SEED, FIRST_SEED + samples), seconds, tempo, ck.path)
    generated = hm.harmony_report(gen_bars, gen_leads, bigram)
    real = [sheet_bars(s) for s in refs]
    reference = hm.harmony_report([b for b, _ in real if b], [n for b, n in real if b], bigram)
    keys = ("bigram_ll", "ii_v", "v_i", "key_changes", "key_fit", "rep5", "div4")
    out: dict[str, Any] = {k: {"generated": generated.get(k), "reference": reference.get(k)} for k in keys}
    training = ck.meta.get("harmony", {}).get("training", {})
    out["teacher_forced_chord_nll"] = {"model": training.get("chord_nll_model"),
                                       "bigram": training.get("chord_nll_bigram"),
                                       "held_out_tunes": training.get("valid_charts")}
    out["protocol"] = {"clips": samples, "seconds": seconds, "tempo": tempo, "first_seed": FIRST_SEED}
    return out


def format_harmony(block: dict[str, Any]) -> list[str]:
    lines = ["", f"{'harmony and form':<18}{'generated':>10}{'reference':>11}"]
    for k, v in block.items():
        if isinstance(v, dict) and "generated" in v:
            g, r = v["generated"], v["reference"]
            lines.append(f"{k:<18}{g if g is None else f'{g:.3f}':>10}{r if r is None else f'{r:.3f}':>11}")
    tf = block.get("teacher_forced_chord_nll", {})
    if tf.get("model") is not None:
        lines.append(f"teacher-forced chord NLL: model {tf['model']:.3f}, chord bigram {tf['bigram']:.3f} nats/chord "
                     f"({tf['held_out_tunes']} held-out tunes)")
    return lines
