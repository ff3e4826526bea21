"""Tokenised datasets: pieces encoded with the grammar, split by recording, stored as JSON.

A dataset file (``.json`` or ``.json.gz``) holds the vocabulary it was built with, the sources and
a fingerprint of the content, and one entry per piece: title, recording, split, tempo, token ids.
JSON, never pickle: a dataset from elsewhere cannot run code.
"""
from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import EngineError
from engine.music import grammar
from engine.music.leadsheet import LeadSheet

FORMAT = "chorus-dataset"
VERSION = 1


@dataclass
class Piece:
    title: str
    recording: str
    split: str  # "train" or "valid"
    tempo: float
    tokens: list[int]
    era: str = ""  # WJazzD style label (e.g. "BEBOP"), "" when unknown
    player: str = ""  # performer, "" when unknown


@dataclass
class Dataset:
    vocab: list[str]
    pieces: list[Piece] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def split(self, name: str) -> list[Piece]:
        return [p for p in self.pieces if p.split == name]

    @property
    def fingerprint(self) -> str:
        h = hashlib.sha256()
        h.update("\n".join(self.vocab).encode())
        for p in sorted(self.pieces, key=lambda p: (p.recording, p.title)):
            h.update(f"{p.recording}|{p.title}|{p.split}|".encode())
            if p.era or p.player:  # unlabelled datasets keep their old fingerprint
                h.update(f"{p.era}|{p.player}|".encode())
            h.update(",".join(map(str, p.tokens)).encode())
        return h.hexdigest()

    def save(self, path: Path) -> None:
        doc = {
            "format": FORMAT, "version": VERSION, "vocab": self.vocab, "sources": self.sources,
            "fingerprint": self.fingerprint,
            "pieces": [p.__dict__ for p in self.pieces],
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps(doc, separators=(",", ":")).encode()
        path.write_bytes(gzip.compress(data, mtime=0) if path.suffix == ".gz" else data)

    @classmethod
    def load(cls, path: Path) -> Dataset:
        """Load a dataset file. Raises EngineError with a clear reason when it is not one."""
        try:
            raw = Path(path).read_bytes()
            if raw[:2] == b"\x1f\x8b":
                raw = gzip.decompress(raw)
            doc = json.loads(raw)
        except (OSError, EOFError, ValueError) as exc:
            raise EngineError(f"cannot read dataset {path}: {exc}") from exc
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise EngineError(f"{path} is not a Chorus dataset")
        if doc.get("version") != VERSION:
            raise EngineError(f"{path}: dataset version {doc.get('version')} is not {VERSION}")
        pieces = [Piece(**p) for p in doc["pieces"]]
        return cls(list(doc["vocab"]), pieces, list(doc.get("sources", [])))


def split_of(recording: str, valid_fraction: float) -> str:
    """Stable split by recording: every piece of one recording lands on the same side."""
    bucket = int(hashlib.sha256(recording.encode()).hexdigest()[:8], 16) % 10_000
    return "valid" if bucket < valid_fraction * 10_000 else "train"


def parse_label(spec: str) -> tuple[str, str, str]:
    """``RECORDING=PERFORMER/ERA`` (e.g. ``midi:original_metheny=Pat Metheny/POSTBOP``) as a triple.

    Raises:
        EngineError: the spec has no ``=`` or no ``/``.
    """
    rec, sep, rest = spec.partition("=")
    player, sep2, era = rest.rpartition("/")
    if not sep or not sep2 or not rec:
        raise EngineError(f"bad --label {spec!r}: expected RECORDING=PERFORMER/ERA, e.g. midi:original_metheny=Pat Metheny/POSTBOP")
    return rec.strip(), player.strip(), era.strip().upper()


def build(sheets: list[LeadSheet], sources: list[str], valid_fraction: float = 0.1,
          labels: dict[str, tuple[str, str]] | None = None) -> tuple[Dataset, list[tuple[str, str]]]:
    """Encode lead sheets into a dataset. Returns the dataset and (title, reason) of pieces left out.

    Args:
        labels: recording -> (performer, era) for pieces whose source carries none (MIDI files);
            the others take ``meta["performer"]`` and ``meta["style"]`` (WJazzD).
    """
    ds = Dataset(list(grammar.VOCAB), sources=sources)
    left_out = []
    for sheet in sheets:
        try:
            tokens = ["BOS", *grammar.encode(sheet), "EOS"]
        except EngineError as exc:
            left_out.append((sheet.title, str(exc)))
            continue
        ids = [grammar.TOKEN_ID[t] for t in tokens]
        rec = sheet.recording or sheet.source or sheet.title
        player, era = (labels or {}).get(rec, (sheet.meta.get("performer", ""), sheet.meta.get("style", "")))
        ds.pieces.append(Piece(sheet.title, rec, split_of(rec, valid_fraction), sheet.tempo, ids, era, player))
    return ds, left_out
