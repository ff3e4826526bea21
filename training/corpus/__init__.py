"""Corpus readers: one module per kind (`READERS`), and `read_sources` over ``KIND=PATH`` specs."""
from __future__ import annotations

from training.corpus.base import CorpusError, ReadReport
from training.corpus.sources import READERS, Source, read_sources

__all__ = ["READERS", "CorpusError", "ReadReport", "Source", "read_sources"]
