"""Corpus readers. Importing this package registers every reader kind."""
from __future__ import annotations

from training.corpus import bach, midi, nottingham, wjazzd  # noqa: F401  (registration)
from training.corpus.base import READERS, CorpusError, ReadReport, Source, read_sources

__all__ = ["READERS", "CorpusError", "ReadReport", "Source", "read_sources"]
