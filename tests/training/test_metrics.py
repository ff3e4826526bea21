from __future__ import annotations

import numpy as np
import pytest

from engine.music.chords import Chord
from engine.music.grammar import QNote, QPiece
from training.evaluation import metrics as m


def piece(bar_notes: list[list[tuple[int, int]]], chords: list[Chord] | None = None) -> QPiece:
    """bar_notes: per 4/4 bar, (onset in units within the bar, pitch)."""
    p = QPiece(bars=[(i * 48, (4, 4)) for i in range(len(bar_notes))])
    for i, bar in enumerate(bar_notes):
        for onset, pitch in bar:
            p.notes.append(QNote(i * 48 + onset, 6, pitch))
    chords = chords or [Chord(0, "maj")]
    p.changes = [(i * 48, c) for i, c in enumerate(chords)]
    return p


def test_pitch_class_entropy() -> None:
    p = piece([[(0, 60), (12, 62), (24, 64), (36, 65)], [(0, 60), (12, 60), (24, 60), (36, 60)]])
    assert m.pitch_class_entropy(p, 1) == pytest.approx((2.0 + 0.0) / 2)
    assert m.pitch_class_entropy(p, 4) == pytest.approx(m._entropy(np.bincount([0, 2, 4, 5, 0, 0, 0, 0], minlength=12)))


def test_grooving_similarity() -> None:
    same = piece([[(0, 60), (12, 62)]] * 3)
    assert m.grooving_similarity(same) == 1.0
    diff = piece([[(0, 60)], [(24, 60)]])
    assert m.grooving_similarity(diff) == pytest.approx(1 - 2 / 64)


def test_chord_progression_irregularity() -> None:
    c = [Chord(r, "maj") for r in (0, 5, 7, 0, 5, 7, 0, 5, 7)]
    assert m.chord_irregularity(piece([[]] * 9, c)) == pytest.approx(3 / 6)
    assert m.chord_irregularity(piece([[]] * 2, c[:2])) == 1.0


def test_chord_tone_ratio_excludes_no_chord() -> None:
    p = piece([[(0, 60), (12, 62)], [(0, 60)]], [Chord(0, "maj"), Chord(None, "NC")])
    assert m.chord_tone_ratio(p) == (1, 2)


def test_overlap_area_of_same_and_far_samples() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, 400)
    assert m.overlap_area(a, rng.normal(0, 1, 400)) > 0.9
    assert m.overlap_area(a, rng.normal(20, 1, 400)) < 0.01


def test_oa_of_a_set_against_itself_is_high() -> None:
    rng = np.random.default_rng(1)
    pieces = [piece([[(int(o), int(p)) for o, p in zip(rng.integers(0, 47, 6), rng.integers(55, 80, 6), strict=True)]
                     for _ in range(4)]) for _ in range(12)]
    oa = m.overlapping_areas(pieces[:6], pieces[6:])
    assert set(oa) == set(m.OA_FEATURES)
    assert all(0.0 <= v <= 1.05 for v in oa.values())
