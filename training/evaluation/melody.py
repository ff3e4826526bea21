"""``chorus eval``: held-out NLL of a checkpoint and its n-gram, and style metrics of its samples.

Pieces whose recording the checkpoint was trained on are left out (the checkpoint lists its
training recordings), so the numbers are on music the model never saw.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.errors import EngineError
from engine.models.checkpoint import Checkpoint
from engine.models.sample import SampleRequest, sample
from engine.music import grammar as g
from engine.music.leadsheet import LeadSheet
from training.evaluation.metrics import overlapping_areas, style_metrics, within
from training.fit.dataset import Piece
from training.fit.ngram import NGram
from training.fit.train import Split, evaluate_nll

METRIC_NAMES = ("H1", "H4", "GS", "CPI", "chord_tone_ratio")


@dataclass
class EvalSettings:
    samples: int = 20
    temperature: float | None = None
    top_p: float | None = None
    seed: int = 0
    max_bars: int = 64


def held_out(ck: Checkpoint, sheets: list[LeadSheet]) -> tuple[list[LeadSheet], int]:
    seen = set(ck.meta.get("corpus", {}).get("train_recordings", []))
    kept = [s for s in sheets if (s.recording or s.source or s.title) not in seen]
    return kept, len(sheets) - len(kept)


def evaluate(ck: Checkpoint, sheets: list[LeadSheet], settings: EvalSettings,
             say: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Evaluate a checkpoint on reference pieces. Returns the JSON-ready report."""
    refs, excluded = held_out(ck, sheets)
    if not refs:
        raise EngineError(f"no held-out pieces: all {excluded} given pieces were in the checkpoint's training set")
    nll, n_tokens, ngram_nll = _held_out_nll(ck, refs, say)
    reference = [g.quantize(s) for s in refs]
    defaults = ck.meta.get("sampling", {})
    temperature = settings.temperature or defaults.get("temperature", 1.0)
    # steered as a clip's melody is, each sample with the register a clip of its seed draws
    steering = {i: style_steering(ck, settings.seed + i) for i in range(settings.samples)}
    top_p = settings.top_p or style_steering(ck).get("top_p") or defaults.get("top_p", 0.95)
    # each sample takes the length and meter of a reference piece in turn, where the style composes
    # in that meter (else its first): all in the first piece's meter, a 3/4 chorale made every one 3/4
    composes = _style_meters(ck)
    meters = [s.time_signature if s.time_signature in composes else composes[0] for s in refs]
    lengths = [min(settings.max_bars, max(4, len(p.bars))) for p in reference]
    forms = defaults.get("forms", [32])
    chord_t = defaults.get("chord_temperature")
    requests = [SampleRequest(**{"bars": lengths[i % len(lengths)], "meter": meter, "temperature": temperature,
                                 "seed": settings.seed + i,
                                 "changes": _changes(ck, settings.seed + i, meter), "form": forms[i % len(forms)],
                                 "chord_temperature": chord_t, **steering[i],
                                 "top_p": top_p})  # after the steering's own top_p: settings.top_p wins
                for i, meter in ((i, meters[i % len(meters)]) for i in range(settings.samples))]
    say(f"sampling {settings.samples} pieces (temperature {temperature}, top-p {top_p})")
    tokens = sample(ck.model, requests)
    # decoded as a clip is: in the style's melody range (the decoder's default range is wider than
    # every style's; bach's soprano kept to it)
    prange = style_pitch_range(ck)
    generated = [g.decode(t, seed=settings.seed + i, prange=prange) for i, t in enumerate(tokens)]
    gen_m, ref_m = style_metrics(generated), style_metrics(reference)
    metrics = {k: {"generated": gen_m[k], "reference": ref_m[k]} for k in METRIC_NAMES}
    for k in ("H1", "H4", "GS", "CPI"):
        metrics[k]["within_15pct"] = within(gen_m[k], ref_m[k])
    metrics["chord_tone_ratio"]["at_least_ref_minus_0.05"] = gen_m["chord_tone_ratio"] >= ref_m["chord_tone_ratio"] - 0.05
    return {
        "checkpoint": str(ck.path),
        "content_hash": ck.content_hash,
        "pieces": len(refs),
        "excluded_seen": excluded,
        "tokens": n_tokens,
        "nll": nll,
        "ngram_nll": ngram_nll,
        "nll_gain_vs_ngram": (1 - nll / ngram_nll) if ngram_nll else None,
        "samples": settings.samples,
        "sampling": {"temperature": temperature, "top_p": top_p, "seed": settings.seed},
        "grammar_errors": float(np.mean([g.grammar_errors(t) for t in tokens])),
        "metrics": metrics,
        "oa": overlapping_areas(generated, reference),
    }


def _held_out_nll(ck: Checkpoint, refs: list[LeadSheet], say: Callable[[str], None]
                  ) -> tuple[float, int, float | None]:
    """(model NLL in nats/token, tokens scored, the checkpoint's n-gram NLL or None) on ``refs``."""
    encoded = []
    for s in refs:
        try:
            encoded.append(["BOS", *g.encode(s), "EOS"])
        except EngineError:
            continue
    split = Split.of([Piece(s.title, s.recording, "valid", s.tempo, [g.TOKEN_ID[t] for t in toks])
                      for s, toks in zip(refs, encoded, strict=False)])
    device = next(ck.model.parameters()).device
    nll, n_tokens = evaluate_nll(ck.model, split, device)
    say(f"model NLL {nll:.4f} nats/token over {n_tokens} tokens of {len(refs)} held-out pieces")
    ngram_nll = None
    if ck.extra:
        ngram = NGram.from_tensors(ck.extra)
        total, n = ngram.nll([list(map(int, t)) for t in split.tokens])
        ngram_nll = total / max(n, 1)
        say(f"n-gram (order {ngram.order}) NLL {ngram_nll:.4f} nats/token")
    return nll, n_tokens, ngram_nll


def _style_meters(ck: Checkpoint) -> tuple[tuple[int, int], ...]:
    """The meters the checkpoint's style composes in (4/4 for a style not registered)."""
    from engine.band.styles import STYLES

    style = STYLES.get(ck.style)
    return tuple(m for m in style.sampling.meters if m in g.METERS) if style else ((4, 4),)


def style_steering(ck: Checkpoint, seed: int | None = None) -> dict:
    """The `engine.models.sample.SampleRequest` keywords that steer the checkpoint's style's draws
    as a clip's are, without an era ({} if the style is not registered; the era check's draws,
    conditioned on an era, are not steered, as a clip's are not)."""
    from engine.band.styles import STYLES

    style = STYLES.get(ck.style)
    return style.sampling.steering(ck.meta.get("sampling", {}), seed=seed) if style else {}


def style_pitch_range(ck: Checkpoint) -> g.PitchRange | None:
    """The melody range the checkpoint's style decodes in (None, the decoder's own, if not registered)."""
    from engine.band.styles import STYLES

    style = STYLES.get(ck.style)
    return style.sampling.pitch_range if style else None


def _changes(ck: Checkpoint, seed: int, meter: tuple[int, int]):
    """With a harmony model, the changes a clip of this seed is played over (as compose plans
    them: a form in a key); None lets the melody model write the harmony itself."""
    if ck.harmony is None:
        return None
    import random

    from engine.compose.song import plan_song

    harmony = ck.meta.get("harmony", {})
    plan = plan_song(ck.harmony, harmony, random.Random(seed), seed, meter, tuple(harmony.get("forms", ("free",))))
    units = g.bar_units(meter)
    return tuple(tuple((round(i * units / len(bar)), f"CH:{c.token}") for i, c in enumerate(bar)) for bar in plan.chorus)


def format_report(r: dict[str, Any]) -> str:
    lines = [f"checkpoint {r['checkpoint']} ({r['content_hash'][:12]})",
             f"held-out pieces {r['pieces']} ({r['excluded_seen']} seen in training left out), {r['tokens']} tokens",
             f"NLL  model {r['nll']:.4f}  n-gram {r['ngram_nll']:.4f} nats/token" if r["ngram_nll"] else
             f"NLL  model {r['nll']:.4f} nats/token",
             f"samples {r['samples']} (temperature {r['sampling']['temperature']}, top-p {r['sampling']['top_p']}), "
             f"grammar errors {r['grammar_errors']:.4f}",
             "",
             f"{'metric':<18}{'generated':>10}{'reference':>11}  check"]
    for k, v in r["metrics"].items():
        check = next((f"{name}: {'yes' if ok else 'NO'}" for name, ok in v.items() if isinstance(ok, bool)), "")
        lines.append(f"{k:<18}{v['generated']:>10.3f}{v['reference']:>11.3f}  {check}")
    lines += ["", "overlapping area (1.0 = same distribution)"]
    lines += [f"  {k:<24}{v:.3f}" if not math.isnan(v) else f"  {k:<24}n/a" for k, v in r["oa"].items()]
    return "\n".join(lines)
