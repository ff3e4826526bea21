"""Golden MIDI: a fixed seed and request give byte-identical MIDI, release after release.

The hashes pin the whole path from request to MIDI bytes (sampling with the shipped checkpoints,
decoding, the ending, the band) so that a refactor which changes what a user hears fails here.
Folk is pinned in each of its meters (the seed picks 6/8, 4/4 or 3/4), since the band plays
each differently. Only ``ComposeResult.midi`` is hashed: the audio depends on the FluidSynth and ffmpeg builds.

(c) pins the free-harmony path (no changes given: the harmony model writes a form in a key and the
melody follows the form). Its hash changed deliberately when the harmony model shipped.
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
                     "906cee20b83763834114fd0382a6567ce6983578bdaa1f48d981e9a305098a7d"),
    "folk_changes": ("folk", "G | C D | Em | D7 G", 12, 110,
                     "f5969bc7d5917d74be861ebf7ee672da2b42729db9e839e37dff404776a33f36"),
    "folk_changes_4_4": ("folk", "G | C D | Em | D7 G", 14, 100,
                         "ad0f0b0a91ea1b5b4f2bbd62f6082146001724f4f0149d48911132381c6a14de"),
    "folk_changes_3_4": ("folk", "G | C D | Em | D7 G", 10, 120,
                         "e731c6af704589d6f0c9e9205153db87a63ea01db81253049b7d04780d3712d6"),
    "jazz_free": ("jazz", None, 13, 176,
                  "41db36f6852a9947f5a25547dbcee2e8d374349ea3e518c4c083d6e12ed7de00"),
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
