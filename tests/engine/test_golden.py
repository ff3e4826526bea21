"""Golden MIDI: a fixed seed and request give byte-identical MIDI, release after release.

The hashes pin the whole path from request to MIDI bytes (sampling with the shipped checkpoints,
decoding, the ending, the band) so that a refactor which changes what a user hears fails here.
Folk is pinned in each of its meters (the seed picks 6/8, 4/4 or 3/4), since the band plays
each differently. Only ``ComposeResult.midi`` is hashed: the audio depends on the FluidSynth and ffmpeg builds.

(c) pins the free-harmony path (no changes given: the harmony model writes a form in a key and the
melody follows the form). Its hash changed deliberately when the harmony model shipped, and both
jazz hashes when the era- and player-conditioned jazz melody model shipped. All five changed when
the lead and bass began holding the final chord as long as the comping (the bass, and a plucked
lead, with the sustain pedal down), and the three folk ones again when folk's lead became the
recorder (GM 74) in place of the flute. All five changed again when the chords went into the MIDI
as marker events (issue 12: the full changes travel in the MIDI when the embed shortens them); the
note tracks were checked to be the same, message for message. Both jazz hashes changed when the
drums began a soft mallet roll on the ride under the final chord (issue 16's held ending); only the
Drums track differs, checked track by track. The three folk hashes changed when the recorder
began tapering its final note (twelve CC11 events in the Lead track; every other message the same).
Both jazz hashes changed when the jazz lead began to play with the feel learned from WJazzD's
performed timing (issue 23: `engine.band.perform`); only the Lead track differs, checked track by
track. Both jazz hashes changed again when the piano began to voice its chords under the lead's
written notes (issue 23); only the Comping track differs, checked track by track. jazz_changes changed again
when the lead began to breathe in the soloists' phrase lengths (issue 23: `Performance.breathe`
leaves out the notes in a rest after a phrase): its Lead track, and its Comping, which voices
under the written lead. Both jazz hashes changed when the lead began to place each note by the
corpus's own spread for its kind of place and tempo, and to articulate by finer bands of spacing
(issue 23: `Performance.onsets`); only the Lead track differs, checked track by track. Both again
when the lead began to play the dynamics learned from WJazzD's note velocities (issue 23:
`Performance.loudness`; its draws also move the lengths drawn after them); only the Lead track differs.
Both again when the jazz melody's draws began to be steered (issue 23: `engine.models.steer`, a
temperature per level of the note token and the decoder's register while sampling) and the
arranger stopped cutting phrases into the line (the model now phrases by itself), and notes closer
than 0.05 beat no longer overlap: the Lead track, and the Comping, which voices under the written
lead; Bass and Drums are the same.
"""
from __future__ import annotations

import hashlib

import pytest

from engine.compose.composer import Composer
from engine.compose.request import ComposeRequest
from engine.settings import Settings
from tests.helpers import REPO

CASES = {
    "jazz_changes": ("jazz", "Dm7 G7 | Cmaj7 | Am7 D7 | Gmaj7", 11, 168,
                     "9552785ae0452f39f5d4855d3ef0a169db1d3ddc7d509ffcdd4de41942b7bb11"),
    "folk_changes": ("folk", "G | C D | Em | D7 G", 12, 110,
                     "72959c9aabd271f4e17a79a8df4b1684757167d285beeff2f147757e9419d84b"),
    "folk_changes_4_4": ("folk", "G | C D | Em | D7 G", 14, 100,
                         "757a4b60b50ab49783ccfce4a180ba52483b9264b6ae39331f663939545d3d27"),
    "folk_changes_3_4": ("folk", "G | C D | Em | D7 G", 10, 120,
                         "6e18dee22ec18f296aade81d688edbd503ee298b0b1416ccbd4d6a3704e81854"),
    "jazz_free": ("jazz", None, 13, 176,
                  "b902165e961e98f1ee973d21b595c1a32724a00f827a7f85a6e4f9553734ff09"),
}


@pytest.fixture(scope="module")
def composer() -> Composer:
    return Composer(Settings.from_env(environ={}, dotenv=None))


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_seed_gives_the_same_midi(composer: Composer, case: str) -> None:
    style, changes, seed, tempo, expected = CASES[case]
    req = ComposeRequest.build(style, "20s", Settings(), [style], tempo=tempo, seed=seed, changes=changes)
    result = composer.compose(req, checkpoint=REPO / "checkpoints" / style)
    assert hashlib.sha256(result.midi).hexdigest() == expected
