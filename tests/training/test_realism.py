"""The realism test (`training.evaluation.realism`): features that see what a listener hears, and a
classifier test that tells different lines apart and cannot tell alike ones apart."""
from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.helpers import FIXTURES
from training.evaluation.realism import Line, features, real_line, two_sample


def line(rnd: random.Random, legato: bool, swing: float = 2.0) -> Line:
    """Eighth-note phrases with rests: held to the next note (legato) or detached."""
    onsets, ends, t = [], [], 0.0
    while t < 32 * 4:
        for _ in range(rnd.randint(4, 12)):
            onsets.append(int(t) + (0.0 if t % 1 < 0.25 else swing / (1 + swing)))
            t += 0.5
        ends.append(len(onsets) - 1)  # a phrase's last note, before a rest
        t += rnd.choice([0.5, 1.0, 2.0, 4.0])
    notes = []
    for i, onset in enumerate(onsets):
        spacing = onsets[i + 1] - onset if i + 1 < len(onsets) and i not in ends else 0.5
        notes.append((onset, spacing if legato else spacing * rnd.uniform(0.5, 0.78), 60 + rnd.randint(-5, 7)))
    return Line(tuple(notes), 4.0, ((0.0, 0),))


def test_articulation_and_placement_are_measured() -> None:
    rnd = random.Random(1)
    held, detached = features(line(rnd, True), "performance"), features(line(rnd, False), "performance")
    assert held["length / spacing 0.95-1.05"] > 0.5 > detached["length / spacing 0.95-1.05"]
    assert detached["length / spacing 0.5-0.8"] > 0.3
    straight = features(line(rnd, True, swing=1.0), "composition")
    assert straight["onset place 0.5-0.666667"] > 0.3 and straight["onset place 0.666667-0.833333"] == 0


def test_the_classifier_tells_different_lines_apart_and_not_alike_ones() -> None:
    rnd = random.Random(2)
    legato = [features(line(rnd, True), "performance") for _ in range(30)]
    detached = [features(line(rnd, False), "performance") for _ in range(30)]
    more = [features(line(rnd, True), "performance") for _ in range(30)]
    apart = two_sample(legato, detached)
    assert apart["accuracy"] > 0.9 and apart["differ_most"][0]["feature"].startswith("length / spacing")
    assert two_sample(legato, more)["accuracy"] < 0.75


@pytest.mark.parametrize("view", ["composition", "performance"])
def test_a_wjazzd_solo_reads_in_both_views(view: str) -> None:
    root = FIXTURES / "wjazzd"
    melody = sorted((root / "csv_melody").glob("*.csv"))[0]
    solo = real_line(melody, root / "csv_beats" / melody.name, view)
    assert len(solo.notes) > 10 and solo.notes[0][0] >= 0 and solo.roots
    assert all(d > 0 for _, d, _ in solo.notes)
    assert set(features(solo, view)) >= {"onset place 0-0.166667", "bars without a note"}


def test_composed_clips_become_lines(tiny_checkpoint: Path) -> None:
    from training.evaluation.realism import composed_lines

    lines = composed_lines(tiny_checkpoint, [120.0, 200.0], "performance", seed=3)
    assert len(lines) == 2 and all(len(x.notes) > 3 and x.roots for x in lines)
