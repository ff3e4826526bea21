"""What every corpus reader shares: its error, its signature and the skip accounting."""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import EngineError
from engine.music.leadsheet import LeadSheet

log = logging.getLogger(__name__)


class CorpusError(EngineError):
    """A corpus file or source could not be read."""


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
