"""Reading untrusted zip and tar archives: members listed with their kind, paths checked, copies capped.

Used by the checkpoint installer (`bot.store.install`) and the corpus downloader
(`training.corpus.fetch`); each decides which members it wants, this module only makes reading
them safe: `safe_parts` refuses absolute paths, ``..`` and NUL bytes, `Member.kind` tells files
from folders, links and special files, and `copy_capped` stops a member that unpacks past a cap.
`survey` lists an archive against `Caps` (members, unpacked bytes, compression ratio) without
unpacking anything, so an archive over a cap is refused before a byte of it is written.
"""
from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import lzma
import stat
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import IO

from engine.errors import EngineError

CHUNK = 1 << 16  # bytes per read while copying
TAR_HEADROOM = 1 << 20  # bytes a capped tar stream may hold beyond its files: headers, long names, padding
ZIP_ENTRY_BYTES = 1024  # central-directory bytes allowed per member (46 fixed, then name, extra fields, comment)
# What a damaged or foreign compressed stream raises while it is read.
READ_ERRORS = (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, zlib.error, lzma.LZMAError)


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


@dataclass(frozen=True)
class Caps:
    """Limits an untrusted archive must keep, checked by `survey` before anything is unpacked."""

    members: int  # entries of any kind: files, folders, links
    total_bytes: int  # unpacked bytes of all entries, as the archive declares them
    ratio: float  # total_bytes / the archive's own bytes

    @property
    def stream_bytes(self) -> int:
        """The most a tar archive's decompressed stream may hold: the files plus `TAR_HEADROOM`."""
        return self.total_bytes + TAR_HEADROOM


def members(source: bytes | Path, max_stream_bytes: int | None = None) -> Iterator[Member]:
    """The members of a zip or tar archive (any tar compression), told apart by content.

    Args:
        max_stream_bytes: refuse a tar archive whose decompressed stream runs past this many bytes
            (headers and long-name records included), before those bytes are read; None: no cap.
            A zip member never unpacks past its declared size (``zipfile`` stops there).

    Raises:
        ArchiveError: the data is neither a zip nor a readable tar archive, or passes the cap.
    """
    data = io.BytesIO(source) if isinstance(source, bytes) else None
    if zipfile.is_zipfile(data if data is not None else source):
        if data is not None:
            data.seek(0)
        yield from _zip_members(data if data is not None else source)
        return
    with _open_tar(source, max_stream_bytes) as tf:
        while True:
            try:
                m = tf.next()
            except READ_ERRORS as exc:
                raise ArchiveError("a damaged tar archive") from exc
            if m is None:
                return
            kind = ("dir" if m.isdir() else "file" if m.isreg() else
                    "link" if m.issym() or m.islnk() else "other")
            yield Member(m.name, kind, m.size, lambda m=m: tf.extractfile(m))


def survey(data: bytes, caps: Caps) -> list[Member]:
    """The members of an archive, listed without unpacking any and refused at the first cap passed.

    A zip's member count is read from its end record before its directory is parsed; a tar is
    read header by header, so a 100,000-member tar stops at member ``caps.members + 1``, and one
    that declares too many bytes stops before they are decompressed. The members returned cannot be
    opened (``open`` gives None): unpack with `members`.

    Raises:
        ArchiveError: not an archive, damaged, or over a cap (the message names which).
    """
    if zipfile.is_zipfile(io.BytesIO(data)):
        count, directory_bytes = _zip_directory(data)
        if count > caps.members or directory_bytes > caps.members * ZIP_ENTRY_BYTES:
            raise ArchiveError(f"more than {caps.members} members")
    listed: list[Member] = []
    total = 0
    for m in members(data, caps.stream_bytes):
        listed.append(replace(m, open=_closed))
        total += max(m.size, 0)
        if len(listed) > caps.members:
            raise ArchiveError(f"more than {caps.members} members")
        if total > caps.total_bytes:
            raise ArchiveError(f"unpacks to more than {caps.total_bytes:,} bytes")
        if total > caps.ratio * len(data):
            raise ArchiveError(f"unpacks to more than {caps.ratio:g} times its size")
    return listed


def _closed() -> None:
    return None


def _zip_directory(data: bytes) -> tuple[int, int]:
    """(members, central-directory bytes) from a zip's end record; zip64 values read as huge."""
    end = len(data) - 22  # where zipfile looks first: an end record without a comment
    if end < 0 or data[end:end + 4] != b"PK\x05\x06" or data[-2:] != b"\0\0":
        end = data.rfind(b"PK\x05\x06", max(0, len(data) - 22 - 0xFFFF))
    if end < 0 or end + 22 > len(data):
        raise ArchiveError("a damaged zip archive")
    count, directory_bytes = struct.unpack("<10xHL", data[end:end + 16])
    return count, directory_bytes


class _CappedStream:
    """A read-only stream that refuses to read or seek past ``cap`` bytes (None: no cap)."""

    def __init__(self, stream: IO[bytes], cap: int | None) -> None:
        self.stream = stream
        self.cap = cap

    def _refuse(self) -> ArchiveError:
        return ArchiveError(f"unpacks past {self.cap:,} bytes")

    def read(self, n: int | None = -1) -> bytes:
        if self.cap is None:
            return self.stream.read(n)
        left = self.cap - self.stream.tell()
        if n is None or n < 0:  # "all of it": at most one byte past the cap, to tell
            data = self.stream.read(left + 1)
            if len(data) > left:
                raise self._refuse()
            return data
        if n > left:  # refused before the decompressor is asked for the bytes
            raise self._refuse()
        return self.stream.read(n)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        target = {io.SEEK_SET: offset, io.SEEK_CUR: self.stream.tell() + offset}.get(whence)
        if self.cap is not None and (target is None or target > self.cap):
            raise self._refuse()
        return self.stream.seek(offset, whence)

    def tell(self) -> int:
        return self.stream.tell()


@contextlib.contextmanager
def _open_tar(source: bytes | Path, cap: int | None) -> Iterator[tarfile.TarFile]:
    """A tar archive read through its decompressor (told by magic bytes) and a `_CappedStream`."""
    with contextlib.ExitStack() as stack:
        raw: IO[bytes] = io.BytesIO(source) if isinstance(source, bytes) else stack.enter_context(open(source, "rb"))
        head = raw.read(6)
        raw.seek(0)
        stream: IO[bytes] = (gzip.GzipFile(fileobj=raw, mode="rb") if head[:2] == b"\x1f\x8b" else
                             bz2.BZ2File(raw) if head[:3] == b"BZh" else
                             lzma.LZMAFile(raw) if head == b"\xfd7zXZ\x00" else raw)
        try:
            tf = tarfile.open(fileobj=_CappedStream(stream, cap), mode="r:")
        except READ_ERRORS as exc:
            raise ArchiveError("not a zip or tar archive") from exc
        with tf:
            yield tf


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
