"""The song plan: the key, the form and one chorus of changes, decided before the melody.

`plan_song` resolves what the user asked for in this order: given changes (chord text, or a named
progression transposed to the key) are played as they are; otherwise the style's harmony model
writes one chorus of the requested (or drawn) form in the requested (or drawn) key. A key not
asked for is drawn with the weights of the style's own training tunes (horn keys for jazz, fiddle
keys for folk), so the seed decides it.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from engine.music.chords import PITCH_NAMES, Chord, parse_chord
from engine.music.forms import Form, get_form, progression

Bars = tuple[tuple[Chord, ...], ...]


@dataclass(frozen=True)
class SongPlan:
    """What the melody is written over.

    Attributes:
        tonic: the key's tonic pitch class; mode: "major" or "minor".
        form: the form's name, or None for the user's own changes.
        chorus: one chorus of changes, per bar (looped for longer clips).
        sections: per section (label, occurrence from 0, first bar, bars), for the melodic form.
    """

    tonic: int
    mode: str
    form: str | None
    chorus: Bars
    sections: tuple[tuple[str, int, int, int], ...] = ()
    fixed_key: bool = True  # False: the user's changes with no key named (the key is estimated later)

    @property
    def key_name(self) -> str:
        return f"{PITCH_NAMES[self.tonic]} {self.mode}"


def transpose_text(text: str, semitones: int) -> Bars:
    """Chord text (``"Dm7 G7 | Cmaj7"``) parsed and moved up ``semitones``."""
    return tuple(tuple(parse_chord(c).transpose(semitones) for c in cell.split()) for cell in text.split("|"))


def plan_song(harmony, harmony_meta: dict, rnd: random.Random, seed: int, meter: tuple[int, int],
              forms: tuple[str, ...], changes: Bars | None = None, changes_text: str | None = None,
              form: str | None = None, key: tuple[int, str] | None = None, era: str = "",
              prefix: Bars = ()) -> SongPlan:
    """Decide the key, the form and the chorus of changes (see the module docstring).

    Args:
        harmony: the style's `engine.models.harmony_net.HarmonyLSTM`, or None (then changes must be given).
        harmony_meta: its ``meta.json["harmony"]`` (key weights, sampling defaults).
        rnd: the request's random generator (draws form and key).
        forms: the style's default forms, drawn from when ``form`` is None.
        prefix: bars heard before the chorus (a seed's), which the harmony model goes on from.
    """
    from engine.models.harmony import draw_key, write_chorus

    named = progression(changes_text) if changes_text else None
    if named is not None:
        mode = named[0]
        tonic = key[0] if key else draw_key(_mode_only(harmony_meta.get("key_weights", {}), mode), rnd)[0]
        bars = transpose_text(named[1], tonic)
        return SongPlan(tonic, mode, None, bars, (("A", 0, 0, len(bars)),))
    if changes:
        from engine.music.keys import estimate_key

        flat = [(float(i), c) for i, bar in enumerate(changes) for c in bar]
        tonic, mode = key or estimate_key([], flat, float(len(changes)))
        return SongPlan(tonic, mode, None, changes, fixed_key=key is not None)
    tonic, mode = key or draw_key(harmony_meta.get("key_weights", {}), rnd)
    chosen: Form = get_form(form or rnd.choice(forms), mode)
    bars = write_chorus(harmony, chosen, tonic, mode, seed, temperature=harmony_meta.get("temperature", 1.0),
                        top_p=harmony_meta.get("top_p", 0.95), era=era, split_bars=meter[0] % 2 == 0,
                        beats=max(1, round(meter[0] * 4 / meter[1])), prefix=prefix)
    return SongPlan(tonic, mode, chosen.name, tuple(bars), tuple(chosen.layout()))


def _mode_only(weights: dict[str, float], mode: str) -> dict[str, float]:
    kept = {k: v for k, v in weights.items() if k.endswith(mode)}
    return kept or {f"0 {mode}": 1.0}
