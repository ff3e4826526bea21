"""Reader for plain MIDI files (``midi=FILE`` or ``midi=DIR``): melody part and inferred chords.

The work is done by `engine.formats.midiread` (shared with seed-MIDI continuation); see its doc for the
melody heuristic and the chord inference.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from engine.formats.midiread import read_midi_file
from engine.music.leadsheet import LeadSheet
from training.corpus.base import CorpusError

MIDI_SUFFIXES = (".mid", ".midi", ".smf", ".kar")


def midi_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in MIDI_SUFFIXES and p.is_file())
    if not files:
        raise CorpusError(f"{root}: no MIDI files")
    return files


def iter_midi(root: Path) -> Iterator[tuple[str, Callable[[], LeadSheet]]]:
    for path in midi_files(root):
        def load(path: Path = path) -> LeadSheet:
            sheet = read_midi_file(path)
            sheet.source, sheet.recording = str(path), f"midi:{path.stem}"
            return sheet

        yield str(path), load
