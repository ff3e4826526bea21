"""The ``style`` block of ``chorus eval``: the era classifier on real solos and on generated clips.

1. The classifier (`training.evaluation.style_classifier`) is fitted on the checkpoint's training solos
   (their WJazzD style labels); its held-out accuracy is stratified 5-fold cross-validation over
   them, and, refitted on all of them, its accuracy on the solos the checkpoint never saw.
2. For each era the checkpoint knows, ``clips_per_era`` melodies are sampled with that era id
   (player unset, free harmony written by the melody model as in the rest of ``chorus eval``, the
   checkpoint's era guidance) and
   classified; the share assigned to the era asked for is the figure, against chance 1/6.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from engine.errors import EngineError
from engine.models.checkpoint import Checkpoint
from engine.models.conditioning import cond_ids
from engine.models.sample import SampleRequest, sample
from engine.music import grammar as g
from engine.music.leadsheet import LeadSheet
from training.evaluation.melody import style_pitch_range
from training.evaluation.style_classifier import (
    CLASSES,
    EraClassifier,
    cross_validate,
    dataset,
    features,
    scores,
)


def _labelled(sheets: list[LeadSheet]) -> list[tuple[g.QPiece, str]]:
    out = []
    for s in sheets:
        era = s.meta.get("style", "")
        if era in CLASSES:
            try:
                out.append((g.quantize(s), era))
            except EngineError:
                continue
    return out


def style_block(ck: Checkpoint, sheets: list[LeadSheet], clips_per_era: int = 10, bars: int = 32, seed: int = 0,
                say: Callable[[str], None] = lambda _: None, guidance: float | None = None) -> dict[str, Any] | None:
    """The JSON-ready style block, or None when the checkpoint has no era conditioning or no labels."""
    if not (ck.meta.get("conditioning") or {}).get("eras"):
        return None
    seen = set(ck.meta.get("corpus", {}).get("train_recordings", []))
    train = [s for s in sheets if (s.recording or s.source or s.title) in seen]
    held = [s for s in sheets if (s.recording or s.source or s.title) not in seen]
    x, y = dataset(_labelled(train))
    if len(y) < 30:
        return None
    say(f"era classifier: {len(y)} labelled training solos, 5-fold cross-validation")
    cv = cross_validate(x, y)
    clf = EraClassifier.fit(x, y)
    hx, hy = dataset(_labelled(held))
    held_scores = scores(hy, clf.predict(hx)) if len(hy) else None
    defaults = ck.meta.get("sampling", {})
    forms = defaults.get("forms", [32])
    guidance = float(defaults.get("guidance", 1.0) if guidance is None else guidance)
    requests, asked = [], []
    for c, era in enumerate(CLASSES):
        era_id, _ = cond_ids(ck.meta, era.lower())
        for i in range(clips_per_era):
            requests.append(SampleRequest(bars=bars, temperature=defaults.get("temperature", 1.0),
                                          top_p=defaults.get("top_p", 0.95), seed=seed + 1000 * c + i,
                                          form=forms[i % len(forms)], era=era_id, guidance=guidance))
            asked.append(c)
    say(f"sampling {len(requests)} clips ({clips_per_era} per era) for the era check")
    tokens = sample(ck.model, requests)
    prange = style_pitch_range(ck)
    feats, kept = [], []
    for i, toks in enumerate(tokens):
        f = features(g.decode(toks, seed=requests[i].seed, prange=prange))  # in the style's range, as a clip
        if f is not None:
            feats.append(f)
            kept.append(asked[i])
    gen = scores(np.array(kept), clf.predict(np.array(feats)))
    per_era = {CLASSES[c].lower(): gen["confusion"][c][c] / max(1, sum(gen["confusion"][c])) for c in range(len(CLASSES))}
    gen["share_assigned_to_asked"] = per_era
    gen["mean_share"] = float(np.mean(list(per_era.values())))
    gen["at_least_twice_chance"] = gen["mean_share"] >= 2 / len(CLASSES)
    gen["guidance"] = guidance
    return {"classifier": "multinomial logistic regression on interval, rhythm, onset-position, chord-relative "
                          "pitch-class and interval-direction-bigram histograms (training/evaluation/style_classifier.py)",
            "cross_validation": cv, "held_out": held_scores, "generated": gen}


def format_style(block: dict[str, Any]) -> list[str]:
    from training.evaluation.style_classifier import format_confusion

    cv, gen = block["cross_validation"], block["generated"]
    lines = ["", f"era classifier: 5-fold accuracy {cv['accuracy']:.3f} (balanced {cv['balanced_accuracy']:.3f}) on "
             f"{cv['n']} training solos; chance {cv['chance']:.3f}, majority class {cv['majority_share']:.3f}"]
    if block["held_out"]:
        h = block["held_out"]
        lines.append(f"  on {h['n']} held-out solos: accuracy {h['accuracy']:.3f} (balanced {h['balanced_accuracy']:.3f})")
    lines.append(f"generated clips assigned to the era asked for: mean {gen['mean_share']:.3f} "
                 f"(chance {1 / len(CLASSES):.3f}); " + ", ".join(f"{k} {v:.2f}" for k, v in gen["share_assigned_to_asked"].items()))
    lines += format_confusion(gen["confusion"], rows="asked")
    return lines
