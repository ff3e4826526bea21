"""Reading untrusted zip and tar archives: members listed with their kind, paths checked, copies capped.

Used by the checkpoint installer (`bot.catalog`) and the corpus downloader
(`training.corpus.fetch`); each decides which members it wants, this module only makes reading
them safe: `safe_parts` refuses absolute paths, ``..`` and NUL bytes, `Member.kind` tells files
from folders, links and special files, and `copy_capped` stops a member that unpacks past a cap.
"""
from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from engine.errors import EngineError

CHUNK = 1 << 16  # bytes per read while copying


class ArchiveError(EngineError):
    """An archive is not a zip or tar file, or a member is unsafe or too large; the message names it."""


@dataclass(frozen=True)
class Member:
    """One archive member. ``kind`` is "file", "dir", "link" (symbolic or hard) or "other".

    ``open`` works only while `members` is being iterated (the archive is closed after).
    """

    name: str  # the path as stored, unchecked: pass it to `safe_parts`
    kind: str
    size: int  # bytes, as the archive declares it
    open: Callable[[], IO[bytes] | None]


def members(source: bytes | Path) -> Iterator[Member]:
    """The members of a zip or tar archive (any tar compression), told apart by content.

    Raises:
        ArchiveError: the data is neither a zip nor a readable tar archive.
    """
    data = io.BytesIO(source) if isinstance(source, bytes) else None
    if zipfile.is_zipfile(data if data is not None else source):
        if data is not None:
            data.seek(0)
        yield from _zip_members(data if data is not None else source)
        return
    try:
        tf = tarfile.open(fileobj=io.BytesIO(source), mode="r:*") if data is not None else tarfile.open(source, "r:*")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ArchiveError("not a zip or tar archive") from exc
    with tf:
        while True:
            try:
                m = tf.next()
            except (tarfile.TarError, EOFError) as exc:
                raise ArchiveError("a damaged tar archive") from exc
            if m is None:
                return
            kind = ("dir" if m.isdir() else "file" if m.isreg() else
                    "link" if m.issym() or m.islnk() else "other")
            yield Member(m.name, kind, m.size, lambda m=m: tf.extractfile(m))


def _zip_members(source: IO[bytes] | Path) -> Iterator[Member]:
    with zipfile.ZipFile(source) as zf:
        for info in zf.infolist():
            mode = (info.external_attr >> 16) & 0o170000  # Unix file type; 0 when made elsewhere
            kind = ("dir" if info.is_dir() else "file" if mode in (0, stat.S_IFREG) else
                    "link" if stat.S_ISLNK(mode) else "other")
            yield Member(info.filename, kind, info.file_size, lambda info=info: zf.open(info))


def safe_parts(name: str) -> tuple[str, ...]:
    """The parts of a member's relative path (``.`` and empty parts dropped).

    Raises:
        ArchiveError: the path is empty, absolute, climbs with ``..`` or holds a NUL byte.
    """
    path = PurePosixPath(name.replace("\\", "/"))
    parts = tuple(p for p in path.parts if p not in (".", ""))
    if not parts or path.is_absolute() or ".." in parts or "\0" in name:
        raise ArchiveError(f"unsafe path {name!r}")
    return parts


def copy_capped(src: IO[bytes], target: Path, max_bytes: int) -> int:
    """Copy a member's stream (closed afterwards) into ``target``; returns the bytes written.

    Raises:
        ArchiveError: the member unpacks past ``max_bytes`` (``target`` is left partly written).
    """
    written = 0
    with src, target.open("wb") as out:
        while block := src.read(CHUNK):
            written += len(block)
            if written > max_bytes:
                raise ArchiveError(f"{target.name} unpacks past {max_bytes:,} bytes")
            out.write(block)
    return written
