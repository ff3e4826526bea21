"""Golden MIDI: a fixed seed and request give byte-identical MIDI, release after release.

The hashes pin the whole path from request to MIDI bytes (sampling with the shipped checkpoints,
decoding, the ending, the band) so that a refactor which changes what a user hears fails here.
Folk is pinned in each of its meters (the seed picks 6/8, 4/4 or 3/4), since the band plays
each differently. Only ``ComposeResult.midi`` is hashed: the audio depends on the FluidSynth and ffmpeg builds.

(c) pins the free-harmony path (no changes given: the harmony model writes a form in a key and the
melody follows the form). Its hash changed deliberately when the harmony model shipped, and both
jazz hashes when the era- and player-conditioned jazz melody model shipped.
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
                     "4ba3e7a7cad92d3970804690e01bd215a19bae5c58d6b2c664183257b579f7e4"),
    "folk_changes": ("folk", "G | C D | Em | D7 G", 12, 110,
                     "91828643874a6cf1f8ed1e458ffa7017a294e600075eb581e89125bd57c66573"),
    "folk_changes_4_4": ("folk", "G | C D | Em | D7 G", 14, 100,
                         "225b256217f4bf76366304fa49581ee2f941bd205dbdd4f2fe80a4157afb464f"),
    "folk_changes_3_4": ("folk", "G | C D | Em | D7 G", 10, 120,
                         "946b66aa42c756cc7d6e54ae8d16afee9e13f8d1e58388448c50f1a696d4ec38"),
    "jazz_free": ("jazz", None, 13, 176,
                  "89eaf27e8ddee53e941bd92b6c7a46fe9ccb36ea77348b42380d096c2d0c3dad"),
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
