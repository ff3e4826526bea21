"""The style registry: one place defines a style, and nothing falls back to jazz in silence."""
from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from engine.band.arrange import Arranger
from engine.band.styles import STYLES, StyleError, get_style
from engine.compose.composer import Composer
from engine.compose.request import ComposeRequest
from engine.errors import EngineError
from engine.music.chords import parse_chord
from engine.music.leadsheet import Note
from engine.settings import Settings


def test_an_unknown_style_is_an_error_that_lists_the_registered_ones() -> None:
    with pytest.raises(StyleError) as err:
        get_style("polka")
    assert isinstance(err.value, EngineError)
    assert "'polka'" in str(err.value) and "folk, jazz" in str(err.value)


def test_a_checkpoint_for_an_unregistered_style_gives_a_clear_error(tiny_checkpoint: Path, tmp_path: Path) -> None:
    ck = tmp_path / "polka"
    shutil.copytree(tiny_checkpoint, ck)
    meta = json.loads((ck / "meta.json").read_text())
    (ck / "meta.json").write_text(json.dumps({**meta, "style": "polka"}))
    req = ComposeRequest.build("jazz", "10s", Settings(), ["jazz"], seed=1)
    with pytest.raises(StyleError, match=r"checkpoint polka is for style 'polka', which is not registered; "
                                         r"registered styles: bach, folk, jazz"):
        Composer(Settings.from_env(environ={}, dotenv=None)).compose(req, checkpoint=ck)


@pytest.mark.parametrize("name", sorted(STYLES))
def test_the_band_depends_on_the_style_data_not_its_name(name: str) -> None:
    style = get_style(name)
    melody = [Note(b * 1.0, 0.5, 67 + b % 5) for b in range(12)]
    changes = [(0.0, parse_chord("Dm7")), (4.0, parse_chord("G7")), (8.0, parse_chord("Cmaj7"))]
    bars = [(0.0, 4.0), (4.0, 4.0), (8.0, 4.0)]

    def arrange(s):
        return Arranger(s, seed=5).arrange(melody, changes, bars, 120.0, (4, 4), "C")

    same, renamed = arrange(style), arrange(replace(style, name="renamed"))
    assert [(p.name, p.program, p.notes) for p in same.parts] == [(p.name, p.program, p.notes) for p in renamed.parts]
    assert ("drums" in [p.name for p in same.parts]) == style.band.drums
