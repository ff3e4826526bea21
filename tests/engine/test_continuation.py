"""Continuing a seed keeps its harmony, key and form (`engine.compose.continuation`)."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.service.jam import continuation
from bot.store.db import Job
from engine.compose.composer import Composer
from engine.compose.continuation import align, seed_bars
from engine.compose.request import ComposeRequest
from engine.formats.midiread import read_midi
from engine.music.chords import parse_chord
from engine.settings import Settings

BLUES_IN_F = "F7 | Bb7 | F7 | F7 | Bb7 | Bb7 | F7 | Am7 D7 | Gm7 | C7 | F7 | C7"


def bars(text: str) -> tuple[tuple, ...]:
    return tuple(tuple(parse_chord(c) for c in cell.split()) for cell in text.split("|"))


@pytest.fixture(scope="module")
def composer() -> Composer:
    return Composer(Settings.from_env(environ={}, dotenv=None), numpy=True)


def clip_job(tmp: Path, composer: Composer, req: ComposeRequest) -> Job:
    """A delivered job of ``req``, its MIDI on disk, as the Continue button finds it."""
    out = composer.compose(req)
    (tmp / "clip.mid").write_bytes(out.midi)
    result = {**out.summary, "files": {"audio": str(tmp / "clip.ogg"), "midi": str(tmp / "clip.mid")}}
    return Job(id="0123456789abcdef", user_id=1, guild_id=2, channel_id=3, request=req.to_payload(), style=req.style,
               checkpoint=req.style, checkpoint_hash="h", status="delivered", result=result, created_at=1.0)


def test_a_seed_cut_mid_chorus_is_placed_where_it_stops() -> None:
    chorus = bars(BLUES_IN_F)
    assert align(chorus[:8], chorus) == (8, 1.0)
    assert align(chorus + chorus[:3], chorus) == (3, 1.0)
    assert align(chorus + (bars("Fmaj7")[0],), chorus) == (0, 1.0)  # a clip's closing bar is left out


def test_a_seed_whose_midi_carries_chord_markers_keeps_them(tmp_path: Path, composer: Composer) -> None:
    job = clip_job(tmp_path, composer, ComposeRequest("jazz", 20, tempo=160, seed=5, changes=bars(BLUES_IN_F),
                                                     changes_text=BLUES_IN_F))
    heard = seed_bars(read_midi((tmp_path / "clip.mid").read_bytes()))
    assert heard[:12] == bars(BLUES_IN_F)  # read from the markers: Am7 D7 in bar 8 too, not a guess
    assert job.result["chorus_bars"] is None  # the member's own changes: no form


def test_continue_on_a_chorus_blues_plays_the_same_twelve_bars_next(tmp_path: Path, composer: Composer) -> None:
    first = clip_job(tmp_path, composer, ComposeRequest("jazz", 20, tempo=160, seed=5, form="blues", key="F"))
    chorus = seed_bars(read_midi((tmp_path / "clip.mid").read_bytes()))[:12]
    assert first.result["form"] == "blues" and first.result["chorus_bars"] == 12
    req = asyncio.run(continuation(first))
    assert req.form == "blues" and req.key_pc == (5, "major") and req.changes == chorus
    out = composer.compose(req)
    start = out.summary["continuation_starts_bar"] - 1  # the first new bar, 0-based
    played = seed_bars(read_midi(out.midi))
    assert played[start:start + 12] == chorus  # the next chorus: the same twelve bars from the top
    assert out.summary["continues"] == {"form": "blues", "key": "F major", "bar": 1}


def test_a_folk_seed_continues_in_its_key(tmp_path: Path, composer: Composer) -> None:
    first = clip_job(tmp_path, composer, ComposeRequest("folk", 20, seed=3, key="D"))
    assert first.result["key"] == "D major"
    out = composer.compose(ComposeRequest("folk", 30, seed=4, seed_midi=(tmp_path / "clip.mid").read_bytes()))
    assert out.summary["key"] == "D major" and out.summary["continues"]["key"] == "D major"
    assert out.summary["continuation_starts_bar"] > 1


def test_a_seed_whose_changes_come_round_is_continued_in_its_own_form() -> None:
    from engine.compose.continuation import repeating_chorus

    blues = bars(BLUES_IN_F)
    assert repeating_chorus(blues + blues[:7]) == (blues, "blues")  # two choruses heard, ended in bar 7
    rhythm = tuple((c,) for c in bars("C6 | A7 | Dm7 | G7 | E7 | E7 | A7 | A7 | D7 | D7 | G7 | G7 | C6 | Am7 | Dm7 | G7"))
    assert repeating_chorus(tuple(b[0] for b in rhythm) * 2) == (tuple(b[0] for b in rhythm), None)
    assert repeating_chorus(blues[:10]) is None  # under a chorus and a half: nothing to go by


@pytest.mark.corpus
def test_real_files_continue_with_the_shipped_harmony_models(composer: Composer) -> None:
    from tests.helpers import FIXTURES, corpus_dir

    root = corpus_dir()
    files = [("jazz", FIXTURES / "midi" / "combo.mid"), ("jazz", root / "deepjazz_metheny" / "original_metheny.mid"),
             *[("jazz", p) for p in sorted((root / "wjazzd" / "midi").glob("*.mid"))[:3]],
             *[("folk", p) for p in sorted((root / "nottingham" / "MIDI").glob("*.mid"))[:3]]]
    for style, path in files:
        out = composer.compose(ComposeRequest(style, 20, seed=1, seed_midi=path.read_bytes()))
        c = out.summary["continues"]
        assert out.summary["continuation_starts_bar"] > 1 and c["key"] == out.summary["key"], path.name
        assert out.summary["bars"] > out.summary["continuation_starts_bar"], path.name
