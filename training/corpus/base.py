"""What every corpus reader shares: the source spec, skip accounting and the reader registry."""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import EngineError
from engine.leadsheet import LeadSheet

log = logging.getLogger(__name__)


class CorpusError(EngineError):
    """A corpus file or source could not be read."""


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


@dataclass
class Skipped:
    path: str
    reason: str


@dataclass
class ReadReport:
    """Pieces read and files skipped (with reasons) over one or more sources."""

    sheets: list[LeadSheet] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def skip(self, path: str | Path, reason: str) -> None:
        log.warning("skipped %s: %s", path, reason)
        self.skipped.append(Skipped(str(path), reason))


# kind -> function(path) yielding (item path, zero-arg loader) pairs; a loader raises to skip.
Reader = Callable[[Path], Iterator[tuple[str, Callable[[], LeadSheet]]]]
READERS: dict[str, Reader] = {}


def register(kind: str) -> Callable[[Reader], Reader]:
    def deco(fn: Reader) -> Reader:
        READERS[kind] = fn
        return fn

    return deco


def read_sources(
    sources: list[Source], progress: Callable[[int, int], None] | None = None
) -> ReadReport:
    """Read every piece of every source; a file that cannot be read is skipped and counted.

    Args:
        sources: the sources to read.
        progress: called as ``progress(done, total)`` after each item.
    """
    from training import corpus  # noqa: F401  (registers the readers)

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
