"""Corpus sources: ``KIND=PATH`` specs, the reader of each kind, and reading them all."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.errors import EngineError
from training.corpus.bach import iter_bach
from training.corpus.base import CorpusError, Reader, ReadReport
from training.corpus.midi import iter_midi
from training.corpus.nottingham import iter_nottingham
from training.corpus.wjazzd import iter_wjazzd

# kind -> its reader (`training.corpus.base.Reader`)
READERS: dict[str, Reader] = {"bach": iter_bach, "midi": iter_midi, "nottingham": iter_nottingham,
                              "wjazzd": iter_wjazzd}


@dataclass(frozen=True)
class Source:
    """A corpus source from the command line: ``KIND=PATH``."""

    kind: str
    path: Path

    @classmethod
    def parse(cls, spec: str) -> Source:
        kind, sep, path = spec.partition("=")
        if not sep or not kind or not path:
            raise CorpusError(f"bad --source {spec!r}: expected KIND=PATH, e.g. wjazzd=../shared/corpus/wjazzd")
        if kind not in READERS:
            raise CorpusError(f"unknown corpus kind {kind!r}: choose from {', '.join(sorted(READERS))}")
        p = Path(path).expanduser()
        if not p.exists():
            raise CorpusError(f"corpus path not found: {p}")
        return cls(kind, p)



def read_sources(
    sources: list[Source], progress: Callable[[int, int], None] | None = None
) -> ReadReport:
    """Read every piece of every source; a file that cannot be read is skipped and counted.

    Args:
        sources: the sources to read.
        progress: called as ``progress(done, total)`` after each item.
    """
    report = ReadReport()
    items = [item for src in sources for item in READERS[src.kind](src.path)]
    for i, (path, load) in enumerate(items):
        try:
            sheet = load()
            if not sheet.measures or sheet.note_count == 0:
                raise CorpusError("no melody notes")
            report.sheets.append(sheet)
        except (EngineError, OSError, ValueError, KeyError, IndexError, EOFError) as exc:
            report.skip(path, str(exc) or type(exc).__name__)
        if progress:
            progress(i + 1, len(items))
    return report
