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
recorder (GM 74) in place of the flute.
"""
from __future__ import annotations

import hashlib

import pytest

from engine.compose import Composer
from engine.request import ComposeRequest
from engine.settings import Settings
from tests.helpers import REPO

CASES = {
    "jazz_changes": ("jazz", "Dm7 G7 | Cmaj7 | Am7 D7 | Gmaj7", 11, 168,
                     "d46e313beeccb27ce2d051bb06542c47860c4f06c7b7fd50ff6895fa2ca2d720"),
    "folk_changes": ("folk", "G | C D | Em | D7 G", 12, 110,
                     "17d380cc716d05b5ea3147a03759b5df161c370d934c2a3d04d7cbc179b9a06b"),
    "folk_changes_4_4": ("folk", "G | C D | Em | D7 G", 14, 100,
                         "9ae6badcce1b59010bf2be911bab379a28a36a2b1b1150266f371e80352ec901"),
    "folk_changes_3_4": ("folk", "G | C D | Em | D7 G", 10, 120,
                         "8a5694b12843a69f421efc84066a14bb58de85a5edf804bc6ebdae1f6dabee8e"),
    "jazz_free": ("jazz", None, 13, 176,
                  "925c5db384966b9026ae534fb3e59c48be5d305ae140a62ca7753f1a63b9dc03"),
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
