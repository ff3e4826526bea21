"""Steering the melody's draws (`engine.models.steer`): a temperature per level of the note token,
and the decoder's register while sampling."""
from __future__ import annotations

import numpy as np
import pytest

from engine.band.styles import get_style
from engine.models.checkpoint import load_checkpoint
from engine.models.sample import SampleRequest, sample
from engine.models.steer import IS_NOTE, Register, temper
from engine.music import grammar as g
from engine.music.chords import Chord
from tests.helpers import REPO

JAZZ_RANGE = get_style("jazz").sampling.pitch_range


def _tokens(*names: str) -> np.ndarray:
    return np.array([g.TOKEN_ID[n] for n in names])


def test_temper_moves_the_rhythm_and_the_chord_relation_and_keeps_the_rests_share() -> None:
    idx = _tokens("C:6:u1", "S:6:u1", "C:3:u1", "R:6")
    p = np.array([0.6, 0.1, 0.1, 0.2])
    assert np.allclose(temper(p, idx, 1.0, 1.0), p)
    hot = temper(p, idx, 2.0, 1.0)  # the rarer duration gains, against the eighths
    assert hot[2] > p[2] and np.isclose(hot[3], p[3]) and np.isclose(hot.sum(), 1.0)
    assert np.isclose(hot[0] / hot[1], p[0] / p[1])  # the chord relation within a duration as it was
    flat = temper(p, idx, 1.0, 2.0)  # the chord relation flattened within the same duration and interval
    assert flat[0] / flat[1] < p[0] / p[1] and np.isclose(flat[0] + flat[1], p[0] + p[1])


def test_the_register_leaves_out_what_no_pitch_keeps_and_draws_a_high_line_down() -> None:
    cmaj7 = Chord(0, "maj7")
    high = Register(JAZZ_RANGE, 83, sd=7.0)  # B5, at the top of the jazz lead's range (55-84)
    comfort = dict(zip([(t, iv) for t in g.NOTE_TYPES for iv in g.INTERVALS], high.comfort(cmaj7), strict=True))
    # a chord tone 5-7 up lands above the range: possible, far less comfortable than down a third
    assert 0 < comfort["C", "u5"] < comfort["C", "u1"] < comfort["C", "d3"]
    at_c = Register(JAZZ_RANGE, 72, sd=7.0)
    assert dict(zip([(t, iv) for t in g.NOTE_TYPES for iv in g.INTERVALS], at_c.comfort(cmaj7),
                    strict=True))["C", "u1"] == 0  # no chord tone of Cmaj7 a tone or a semitone above C
    logits = np.zeros(len(g.VOCAB))
    mask = IS_NOTE.copy()
    steered, kept = at_c.steer(logits, mask, cmaj7, 1.0)
    assert not kept[g.TOKEN_ID["C:6:u1"]] and kept[g.TOKEN_ID["C:6:u3"]]
    assert np.isclose(np.logaddexp.reduce(steered[kept & IS_NOTE]), np.logaddexp.reduce(logits[mask]))


@pytest.fixture(scope="module")
def jazz():
    return load_checkpoint(REPO / "checkpoints" / "jazz", numpy=True)


def test_a_steered_line_never_asks_the_decoder_for_a_note_it_cannot_keep(jazz) -> None:
    def misses(**steer) -> tuple[int, int]:
        reqs = [SampleRequest(bars=16, seed=s, pitch_range=JAZZ_RANGE, **steer) for s in range(6)]
        pieces = [g.decode(t, seed=r.seed, prange=JAZZ_RANGE) for t, r in zip(sample(jazz.model, reqs), reqs,
                                                                               strict=True)]
        return sum(p.fallbacks for p in pieces), sum(len(p.notes) for p in pieces)

    free, notes = misses()
    steered, _ = misses(register=0.6)
    assert free > 0.03 * notes  # the model alone asks for notes no pitch keeps
    assert steered == 0


def test_a_steered_request_is_checked() -> None:
    from engine.errors import EngineError

    with pytest.raises(EngineError, match="rhythm and type temperatures"):
        SampleRequest(bars=4, rhythm_temperature=0.0)


def test_each_clip_is_drawn_its_own_register() -> None:
    sampling = get_style("jazz").sampling
    drawn = [sampling.steering({}, seed=seed) for seed in range(40)]
    centres = [d["register_centre"] for d in drawn]
    assert drawn[3] == sampling.steering({}, seed=3)  # seeded
    assert 3 < np.std(centres) < 6 and max(centres) - min(centres) < 15  # WJazzD's solos: sd 4.7 semitones
    assert sampling.steering({}, conditioned=True) == {}  # an era's draws are not steered
