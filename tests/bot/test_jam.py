"""The requests the buttons under a clip make (`bot.service.jam`), and the clip's file names (`bot.ui.delivery`)."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.errors import ServiceError
from bot.service.jam import (
    CONTINUE_SECONDS,
    another_take,
    continuation,
    realised_changes,
    variation,
)
from bot.store.db import Job
from bot.ui.delivery import clip_name, continuation_text, reproduce
from engine.compose.request import ComposeRequest
from engine.settings import Settings


def finished(tmp: Path, **options) -> Job:
    req = ComposeRequest.build("jazz", "20s", Settings(), ["jazz"], **{"seed": 7, "temperature": 0.8, **options})
    midi = tmp / "clip.mid"
    midi.write_bytes(b"MThd-the-clip")
    result = {"tempo": 152.0, "key": "F# minor", "form": "aaba", "changes": "Dm7 G7 | % | Cmaj7", "seed": 7,
              "bars": 8, "seconds": 20.0, "files": {"audio": str(tmp / "clip.ogg"), "midi": str(midi)}}
    return Job(id="0123456789abcdef", user_id=1, guild_id=2, channel_id=3, request=req.to_payload(), style="jazz",
               checkpoint="jazz-v2", checkpoint_hash="h", status="delivered", result=result, created_at=1741041145.9)


def test_realised_changes_spell_out_repeated_bars() -> None:
    assert realised_changes("Dm7 G7 | % | Cmaj7 | %") == "Dm7 G7 | Dm7 G7 | Cmaj7 | Cmaj7"
    assert realised_changes("") is None and realised_changes("Zz9 | %") is None


def test_another_take_is_the_same_request_with_a_new_seed(tmp_path: Path) -> None:
    job = finished(tmp_path, audio_format="mp3", parts={"lead", "bass"})
    req = another_take(job)
    assert req.seed is None and req.audio_format == "mp3" and req.parts == {"lead", "bass"}
    assert req.temperature == 0.8 and req.seconds == 20


def test_a_variation_keeps_the_realised_changes_form_and_key(tmp_path: Path) -> None:
    req = variation(finished(tmp_path))
    assert req.seed is None and req.changes_text == "Dm7 G7 | Dm7 G7 | Cmaj7"
    assert req.form == "aaba" and req.key == "F# minor"


def test_continue_seeds_with_the_clips_midi_at_its_tempo(tmp_path: Path) -> None:
    req = asyncio.run(continuation(finished(tmp_path)))
    assert req.seed_midi == b"MThd-the-clip" and req.tempo == 152.0 and req.seconds == CONTINUE_SECONDS
    assert req.seed is None


def test_continue_without_the_clips_chorus_length_drops_the_first_requests_key_form_and_changes(tmp_path: Path) -> None:
    req = asyncio.run(continuation(finished(tmp_path, key="F minor", form="blues", changes="Fm7 | Bb7")))
    assert (req.key, req.form, req.changes_text) == (None, None, None) and req.seed_midi == b"MThd-the-clip"


def test_continue_plays_over_one_chorus_of_the_clips_changes_in_its_form_and_key(tmp_path: Path) -> None:
    job = finished(tmp_path)
    job.result.update(chorus_bars=2, changes="Dm7 G7 | % | Cmaj7")
    req = asyncio.run(continuation(job))
    assert (req.changes_text, req.form, req.key) == ("Dm7 G7 | Dm7 G7", "aaba", "F# minor")


def test_the_embed_says_what_a_continuation_went_on_with() -> None:
    s = {"continuation_starts_bar": 9, "continues": {"form": "blues", "key": "F major", "bar": 9}}
    assert continuation_text(s) == "continues your blues in F major at bar 9; the new music starts at bar 9 of the clip"
    s["continues"] = {"form": None, "key": "D major", "bar": 1}
    assert continuation_text(s).startswith("continues your tune in D major;")
    assert continuation_text({"continuation_starts_bar": 3}) == "the new music starts at bar 3 of the clip"


def test_continue_on_a_pruned_clip_is_refused(tmp_path: Path) -> None:
    job = finished(tmp_path)
    (tmp_path / "clip.mid").unlink()
    with pytest.raises(ServiceError, match="removed by the retention policy"):
        asyncio.run(continuation(job))


def test_files_are_named_for_the_clip(tmp_path: Path) -> None:
    job = finished(tmp_path)
    assert clip_name(job, "/data/x/clip.OGG") == "chorus-jazz-Fsm-152bpm-1741041145.ogg"
    job.result = {**job.result, "key": "Bb major"}
    assert clip_name(job, "clip.png") == "chorus-jazz-Bb-152bpm-1741041145.png"


def test_reproduce_names_every_option_that_matters(tmp_path: Path) -> None:
    job = finished(tmp_path, audio_format="flac", parts={"lead", "comping", "bass"}, swing=2.0)
    line = reproduce(job)
    for part in ("seed:7", "tempo:152", "temperature:0.8", "swing:2", "format:flac", "without:drums"):
        assert part in line, (part, line)
