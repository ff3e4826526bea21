"""`chorus compose bach`: a chorale with a tiny bach checkpoint trained by the test, played by the
organ or the string quartet, and a seed MIDI continued as a chorale. The voices keep the rules."""
from __future__ import annotations

from pathlib import Path

import pytest

from engine.band.chorale import check, chorale_of_score
from engine.compose.composer import Composer
from engine.compose.request import ComposeRequest
from engine.music.forms import parse_key_name
from engine.settings import Settings
from tests.helpers import combo_midi


@pytest.fixture(scope="module")
def bach_checkpoint(tmp_path_factory: pytest.TempPathFactory, fixture_dataset: Path) -> Path:
    """A tiny checkpoint for the bach style (melody model only: it writes the chords too)."""
    from training.fit.train import preset, train

    out = tmp_path_factory.mktemp("ck") / "bach"
    train(preset("tiny", style="bach"), fixture_dataset, out, device="cpu", say=lambda _: None)
    return out


def _compose(ck: Path, **options):
    settings = Settings.from_env(environ={}, dotenv=None)
    req = ComposeRequest.build("bach", options.pop("length", "20s"), settings, ["bach"], seed=7, **options)
    return Composer(settings).compose(req, checkpoint=ck)


def test_a_chorale_on_the_organ_keeps_the_rules(bach_checkpoint: Path) -> None:
    result = _compose(bach_checkpoint)
    score = result.score
    assert [p.name for p in score.parts] == ["lead", "alto", "tenor", "bass"]
    assert {p.program for p in score.parts} == {19} and not any(p.is_drums for p in score.parts)
    assert 60 <= result.summary["tempo"] <= 90
    bar_beats = score.meter[0] * 4 / score.meter[1]
    assert len(score.fermatas) >= 2 and any(length > bar_beats for _, length in score.bars)  # phrase ends held
    tonic, mode = parse_key_name(result.summary["key"])
    counts = check(chorale_of_score(score, tonic, mode, frozenset(score.fermatas)))
    assert counts.beats >= 16
    assert (counts.crossings, counts.range_violations) == (0, 0)
    assert counts.parallels <= 1  # only where the soprano and the chords leave no other way
    assert result.summary["seconds"] > 15


def test_the_string_quartet_plays_the_same_voices(bach_checkpoint: Path) -> None:
    organ, strings = _compose(bach_checkpoint), _compose(bach_checkpoint, band="strings")
    assert [p.program for p in strings.score.parts] == [40, 41, 42, 43]
    assert [[n.pitch for n in p.notes] for p in organ.score.parts] == [[n.pitch for n in p.notes] for p in strings.score.parts]


def test_a_seed_midi_is_continued_as_a_chorale(bach_checkpoint: Path) -> None:
    result = _compose(bach_checkpoint, seed_midi=combo_midi(drums=False))
    assert [p.name for p in result.score.parts] == ["lead", "alto", "tenor", "bass"]
    assert result.summary["continuation_starts_bar"] is not None
    tonic, mode = parse_key_name(result.summary["key"])
    counts = check(chorale_of_score(result.score, tonic, mode, frozenset(result.score.fermatas)))
    assert counts.crossings == 0


@pytest.mark.parametrize("seed", [2026, 2027, 2028, 2029])
def test_the_shipped_bach_checkpoint_writes_chorales_that_keep_the_rules(seed: int) -> None:
    """`/compose bach 30s` as a member gets it: the shipped checkpoint's harmony model steps on
    the beat, and the chorale keeps its voices in range, uncrossed, nearly free of parallels, with a
    cadence at every phrase end but at most one (the acceptance is 90% over 50 chorales)."""
    from engine.models.checkpoint import load_checkpoint
    from tests.helpers import REPO

    ck = load_checkpoint(REPO / "checkpoints" / "bach")
    assert ck.style == "bach" and ck.harmony is not None and ck.harmony.config.slots == 4
    assert "public domain" in ck.meta["harmony"]["corpus"]["music21"]
    settings = Settings.from_env(environ={}, dotenv=None)
    result = Composer(settings).compose(ComposeRequest.build("bach", "30s", settings, ["bach"], seed=seed))
    score = result.score
    assert [p.program for p in score.parts] == [19, 19, 19, 19] and 60 <= result.summary["tempo"] <= 90
    tonic, mode = parse_key_name(result.summary["key"])
    counts = check(chorale_of_score(score, tonic, mode, frozenset(score.fermatas)))
    assert counts.beats >= 24 and counts.phrase_ends >= 3
    assert (counts.crossings, counts.range_violations) == (0, 0)
    assert counts.parallels <= 1  # where the soprano and the chords leave no other way (Bach: 2.8 per 100 changes)
    assert counts.cadences >= counts.phrase_ends - 1
    assert counts.chord_changes >= counts.beats // 3  # the chords move on the beat, as Bach's do
