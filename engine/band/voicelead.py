"""Alto, tenor and bass under a given soprano: an exact dynamic-programming search over voicings.

For each beat the candidates are every (alto, tenor, bass) of chord tones in the voices' ranges
(`engine.band.chorale.RANGES`) under the beat's soprano, without crossing, with S-A and A-T within an
octave, and with the chord complete (root and third, and the seventh of a seventh chord). Each
candidate has a cost of its own (an inversion, a doubled third or leading tone, distance from the
middle of the ranges) and each pair of successive candidates a cost of motion: a parallel fifth or
octave between any pair of voices is all but forbidden, an unresolved leading tone over V-I
costly, and large leaps in the inner voices, hidden fifths and octaves in the outer voices and
voice overlaps are penalised. The cheapest path over all beats (Viterbi, vectorised with numpy)
is the result, so it is deterministic and never breaks a hard rule where a path without it exists.

Where no candidate satisfies every constraint (a chord and soprano that cannot be voiced
completely), the beat's constraints are relaxed in stages (completeness, then spacing), so a
chorale is always written.
"""
from __future__ import annotations

from collections.abc import Sequence
from itertools import product

import numpy as np

from engine.band.chorale import MAX_SPACING, PAIRS, RANGES, is_dominant, is_tonic
from engine.music.chords import Chord, chord_tones

PARALLEL_COST = 1000.0
UNRESOLVED_LT_COST = 40.0
HIDDEN_COST = 4.0
OVERLAP_COST = 3.0
LEAP_COST = 6.0  # an inner voice leaping more than a fifth
INNER_STEP = 1.0  # per semitone of alto and tenor motion
BASS_STEP = 0.35  # per semitone of bass motion (the bass leaps by nature)
BASS_LEAP_COST = 4.0  # a bass leap beyond an octave
INVERSION_COST = {0: 0.0, 1: 3.0, 2: 8.0, 3: 4.0}  # bass on root, third, fifth, seventh
DOUBLED_THIRD_COST = 2.0
DOUBLED_LT_COST = 30.0
CENTRE_COST = 0.08  # per semitone from the middle of a voice's range


def _tone_index(chord: Chord, pc: int) -> int | None:
    """0 root, 1 third, 2 fifth, 3 seventh (or sixth) of ``chord``; None for a non-chord tone."""
    rel = (pc - chord.root) % 12
    return {0: 0, 3: 1, 4: 1, 6: 2, 7: 2, 8: 2, 9: 3, 10: 3, 11: 3}.get(rel) if rel in chord_tones(0, chord.family) else None


def candidates(soprano: int, chord: Chord, tonic: int, relax: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Voicings of one beat: an (N, 4) array of S, A, T, B pitches and their (N,) own costs.

    ``relax`` 0 demands a complete chord within the spacing limits; 1 drops completeness; 2 also
    the spacing (crossing is never allowed).
    """
    pcs = chord_tones(chord.root, chord.family)
    lt = (tonic + 11) % 12
    (a_lo, a_hi), (t_lo, t_hi), (b_lo, b_hi) = RANGES["alto"], RANGES["tenor"], RANGES["bass"]
    alto = [p for p in range(a_lo, min(a_hi, soprano) + 1) if p % 12 in pcs]
    tenor = [p for p in range(t_lo, t_hi + 1) if p % 12 in pcs]
    bass = [p for p in range(b_lo, b_hi + 1) if p % 12 in pcs]
    need = {pc for pc in pcs if _tone_index(chord, pc) in (0, 1)}
    if len(pcs) == 4 and chord.family not in ("6", "min6"):
        need |= {pc for pc in pcs if _tone_index(chord, pc) == 3}
    rows, costs = [], []
    mids = [sum(RANGES[v]) / 2 for v in ("alto", "tenor", "bass")]
    for a, t, b in product(alto, tenor, bass):
        if not soprano >= a >= t >= b or t == b:
            continue
        if relax < 2 and (soprano - a > MAX_SPACING or a - t > MAX_SPACING):
            continue
        voiced = {soprano % 12, a % 12, t % 12, b % 12}
        if relax < 1 and not need <= voiced:
            continue
        cost = INVERSION_COST.get(_tone_index(chord, b % 12) or 0, 4.0)
        notes = [soprano % 12, a % 12, t % 12, b % 12]
        third = next((pc for pc in pcs if _tone_index(chord, pc) == 1), None)
        if third is not None and notes.count(third) > 1 and chord.family in ("maj", "7"):
            cost += DOUBLED_THIRD_COST
        if notes.count(lt) > 1:
            cost += DOUBLED_LT_COST
        cost += CENTRE_COST * sum(abs(p - m) for p, m in zip((a, t, b), mids, strict=True))
        cost += 0.5 * (a == soprano) + 0.5 * (t == a)
        rows.append((soprano, a, t, b))
        costs.append(cost)
    return np.array(rows, dtype=np.int64).reshape(-1, 4), np.array(costs, dtype=float)


def _beat_candidates(soprano: int, chord: Chord, tonic: int) -> tuple[np.ndarray, np.ndarray]:
    for relax in range(3):
        rows, costs = candidates(soprano, chord, tonic, relax)
        if len(rows):
            return rows, costs + 25.0 * relax
    # no chord tone fits at all (a soprano below the alto range): double the soprano's line
    lo = RANGES["bass"][0]
    b = max(lo, soprano - 24)
    return np.array([[soprano, soprano, max(soprano - 12, b), b]]), np.array([100.0])


def transition_costs(prev: np.ndarray, cur: np.ndarray, lt_resolves: bool, tonic: int) -> np.ndarray:
    """(P, C) cost of moving from each of ``prev`` (P, 4) to each of ``cur`` (C, 4) voicings."""
    p, c = prev[:, None, :], cur[None, :, :]  # (P, 1, 4), (1, C, 4)
    moved = p != c  # (P, C, 4)
    cost = INNER_STEP * (np.abs(p[..., 1] - c[..., 1]) + np.abs(p[..., 2] - c[..., 2])).astype(float)
    cost += BASS_STEP * np.abs(p[..., 3] - c[..., 3])
    cost += BASS_LEAP_COST * (np.abs(p[..., 3] - c[..., 3]) > 12)
    cost += LEAP_COST * ((np.abs(p[..., 1] - c[..., 1]) > 7).astype(float) + (np.abs(p[..., 2] - c[..., 2]) > 7))
    for a, b in PAIRS:
        i0 = np.abs(p[..., a] - p[..., b]) % 12
        i1 = np.abs(c[..., a] - c[..., b]) % 12
        both = moved[..., a] & moved[..., b]
        cost += PARALLEL_COST * (both & (i0 == i1) & ((i1 == 7) | (i1 == 0)))
    # hidden fifths and octaves: soprano and bass in similar motion into a perfect interval, soprano leaping
    ds, db = c[..., 0] - p[..., 0], c[..., 3] - p[..., 3]
    outer = np.abs(c[..., 0] - c[..., 3]) % 12
    cost += HIDDEN_COST * ((ds * db > 0) & (np.abs(ds) > 2) & ((outer == 0) | (outer == 7)))
    # overlap: a voice moves past where its neighbour was
    for up, low in ((0, 1), (1, 2), (2, 3)):
        cost += OVERLAP_COST * ((c[..., low] > p[..., up]) | (c[..., up] < p[..., low]))
    if lt_resolves:
        lt = (tonic + 11) % 12
        for v in (1, 2, 3):
            cost += UNRESOLVED_LT_COST * ((p[..., v] % 12 == lt) & (c[..., v] != p[..., v] + 1))
    return cost


def voice_chorale(soprano: Sequence[int | None], chords: Sequence[Chord | None], tonic: int
                  ) -> list[tuple[int, int, int, int]]:
    """The cheapest (S, A, T, B) per beat under ``soprano`` over ``chords``.

    Args:
        soprano: the soprano's MIDI pitch at each beat's onset; None where it rests (the last
            pitch sounding stands in, or the next one at the start).
        chords: the chord of each beat; None or no-chord keeps the previous beat's chord (the
            tonic triad at the start).
        tonic: the key's tonic pitch class (for the leading tone).
    Returns:
        one (soprano, alto, tenor, bass) per beat; the soprano as given (or as stood in).
    """
    n = len(soprano)
    if n != len(chords):
        raise ValueError(f"{n} soprano beats but {len(chords)} chords")
    if n == 0:
        return []
    filled = _fill(soprano)
    chord_seq: list[Chord] = []
    for ch in chords:
        if ch is None or ch.is_nc:
            ch = chord_seq[-1] if chord_seq else Chord(tonic, "maj")
        chord_seq.append(ch)
    cands = [_beat_candidates(s, ch, tonic) for s, ch in zip(filled, chord_seq, strict=True)]
    total = cands[0][1].copy()
    back: list[np.ndarray] = []
    for i in range(1, n):
        rows, own = cands[i]
        lt = is_dominant(chord_seq[i - 1], tonic) and is_tonic(chord_seq[i], tonic)
        step = total[:, None] + transition_costs(cands[i - 1][0], rows, lt, tonic)  # (P, C)
        arg = np.argmin(step, axis=0)
        back.append(arg)
        total = step[arg, np.arange(len(rows))] + own
    k = int(np.argmin(total))
    path = [k]
    for arg in reversed(back):
        k = int(arg[k])
        path.append(k)
    path.reverse()
    return [tuple(int(x) for x in cands[i][0][k]) for i, k in enumerate(path)]  # type: ignore[misc]


def _fill(soprano: Sequence[int | None]) -> list[int]:
    known = [p for p in soprano if p is not None]
    if not known:
        raise ValueError("the soprano has no pitch at all")
    out, last = [], known[0]
    for p in soprano:
        last = p if p is not None else last
        out.append(last)
    return out
