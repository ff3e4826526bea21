from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import EngineError
from engine.models.checkpoint import load_checkpoint
from engine.models.sample import SampleRequest, sample
from engine.music import grammar as g


@pytest.fixture(scope="module")
def model(tiny_checkpoint: Path):
    return load_checkpoint(tiny_checkpoint).model


def chords_by_bar(tokens: list[str]) -> list[list[str]]:
    bars: list[list[str]] = []
    for t in tokens:
        if t.startswith("BAR:"):
            bars.append([])
        elif t.startswith("CH:"):
            bars[-1].append(t)
    return bars


def test_same_seed_same_tokens_and_valid_grammar(model) -> None:
    a = sample(model, [SampleRequest(bars=6, seed=11)])[0]
    b = sample(model, [SampleRequest(bars=6, seed=11)])[0]
    c = sample(model, [SampleRequest(bars=6, seed=12)])[0]
    assert a == b and a != c
    assert g.grammar_errors(a) == 0.0
    assert sum(t.startswith("BAR:") for t in a) == 6


def test_batched_equals_unbatched(model) -> None:
    reqs = [SampleRequest(bars=4 + i % 3, seed=100 + i, temperature=0.8 + 0.1 * i) for i in range(5)]
    batched = sample(model, reqs)
    assert batched == [sample(model, [r])[0] for r in reqs]


def test_given_changes_are_forced(model) -> None:
    changes = (((0, "CH:Dm7"), (24, "CH:G7")), ((0, "CH:Cmaj7"),))
    toks = sample(model, [SampleRequest(bars=5, seed=3, changes=changes)])[0]
    assert chords_by_bar(toks) == [["CH:Dm7", "CH:G7"], ["CH:Cmaj7"]] * 2 + [["CH:Dm7", "CH:G7"]]
    piece = g.decode(toks)
    assert [(t, c.token) for t, c in piece.changes[:3]] == [(0, "Dm7"), (24, "G7"), (48, "Cmaj7")]


def test_primer_is_kept_and_continued(model) -> None:
    primer = tuple(sample(model, [SampleRequest(bars=2, seed=5)])[0])
    toks = sample(model, [SampleRequest(bars=3, seed=6, primer=primer)])[0]
    assert tuple(toks[: len(primer)]) == primer
    assert sum(t.startswith("BAR:") for t in toks) == 5 and g.grammar_errors(toks) == 0.0


def test_form_repeats_the_harmony(model) -> None:
    bars = chords_by_bar(sample(model, [SampleRequest(bars=9, seed=8, form=4)])[0])
    assert bars[4:8] == bars[:4] and bars[8] == bars[0]


@pytest.mark.parametrize("kwargs", [{"bars": -1}, {"bars": 2, "temperature": 0}, {"bars": 2, "top_p": 1.5},
                                    {"bars": 2, "meter": (7, 3)}, {"bars": 2, "primer": ("nope",)}])
def test_bad_requests_name_the_value(kwargs) -> None:
    with pytest.raises(EngineError):
        SampleRequest(**kwargs)
