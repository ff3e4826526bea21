"""Reader for the Nottingham folk tunes (Jukedeck's MIDI): track 0 melody, track 1 block chords.

``nottingham=DIR`` takes the corpus folder (its ``MIDI/*.mid``) or any folder of such files.
Each tune is its own recording for the train/validation split.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from engine.formats.midiread import read_midi_file
from engine.music.leadsheet import LeadSheet
from training.corpus.base import CorpusError


def tune_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    folder = root / "MIDI" if (root / "MIDI").is_dir() else root
    files = sorted(folder.glob("*.mid"))
    if not files:
        raise CorpusError(f"{root}: no Nottingham MIDI files (expected MIDI/*.mid)")
    return files


def iter_nottingham(root: Path) -> Iterator[tuple[str, Callable[[], LeadSheet]]]:
    for path in tune_files(root):
        def load(path: Path = path) -> LeadSheet:
            sheet = read_midi_file(path, melody=0, chord_part=1, chords="blocks")
            sheet.source, sheet.recording = str(path), f"nottingham:{path.stem}"
            return sheet

        yield str(path), load
