"""`ComposeRequest.build`: what a continuation takes (it goes on in its seed's key over its own chords)."""
from __future__ import annotations

import pytest

from engine.compose.request import ComposeRequest, RequestError
from engine.settings import Settings


def build(**options) -> ComposeRequest:
    return ComposeRequest.build("jazz", "20s", Settings(), ["jazz"], **options)


@pytest.mark.parametrize(("options", "named"), [
    ({"key": "F minor"}, "takes no key; leave it out"),
    ({"form": "blues", "changes": "Dm7 G7 | Cmaj7"}, "takes no form or changes; leave them out"),
])
def test_a_continuation_refuses_a_key_form_or_changes_by_name(options: dict, named: str) -> None:
    for seed in ({"seed_midi": b"MThd"}, {"seeded": True}):  # the file given, or still to be downloaded
        with pytest.raises(RequestError, match=f"a continuation follows your MIDI file's key and harmony, so it {named}"):
            build(**seed, **options)


def test_a_continuation_takes_tempo_swing_and_the_rest() -> None:
    req = build(seeded=True, tempo=140, swing=2.0, seed=3, audio_format="mp3")
    assert (req.tempo, req.swing, req.seed, req.audio_format) == (140, 2.0, 3, "mp3")
    assert build(key="F minor", form="blues").key == "F minor"  # without a seed, all is taken
