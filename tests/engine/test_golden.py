"""Golden MIDI: a fixed seed and request give byte-identical MIDI, release after release.

The hashes pin the whole path from request to MIDI bytes (sampling with the shipped checkpoints,
decoding, the ending, the band) so that a refactor which changes what a user hears fails here.
Folk is pinned in each of its meters (the seed picks 6/8, 4/4 or 3/4), since the band plays
each differently. Only ``ComposeResult.midi`` is hashed: the audio depends on the FluidSynth and ffmpeg builds.

(c) pins the free-harmony path (no changes given: the harmony model writes a form in a key and the
melody follows the form). Its hash changed once, deliberately, when the harmony model shipped.
Both jazz hashes changed deliberately when the era- and player-conditioned jazz melody model shipped.
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
                     "02959962a2b5bd79206dbd60aef8d1e1e759d13492723db14d9deb3fd2e89c70"),
    "folk_changes": ("folk", "G | C D | Em | D7 G", 12, 110,
                     "9465d8c5b785eb09cd0b946504085102b08e94f8b2aec5750ec356f3b8a4d78e"),
    "folk_changes_4_4": ("folk", "G | C D | Em | D7 G", 14, 100,
                         "0a238e2e0bf8231b07ae9d2771b710d39952c8c33db2a17abc25ceb0bcc0b55f"),
    "folk_changes_3_4": ("folk", "G | C D | Em | D7 G", 10, 120,
                         "b0b1610c4366600bcc109b7adf003d9a280a5255f0b6290f98c24600a2045523"),
    "jazz_free": ("jazz", None, 13, 176,
                  "d11585c471180d6effb2750b76e6ffebc2d4d1e39e2116c7ce9d1f701ca85d38"),
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
