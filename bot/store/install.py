"""Unpacking and validating an uploaded checkpoint archive: caps first, nothing on the event loop.

An archive (zip or tar, optionally compressed) must hold exactly two regular files,
``model.safetensors`` and ``meta.json``, flat or inside one folder. Each step refuses with one
line (`CatalogError`) and nothing is unpickled:

1. `engine.formats.archive.survey` lists the members without unpacking any: at most `MAX_MEMBERS`
   entries, at most the settings' ``max_checkpoint_bytes`` unpacked in all, at most `MAX_RATIO`
   times the archive's own size. An archive over a cap writes nothing.
2. The list must be the two files and nothing else (no links, special files, unsafe paths or
   duplicates; ``meta.json`` within `engine.models.checkpoint.MAX_META_BYTES`).
3. Only those two are unpacked, each stopped at its declared size.
4. `engine.models.checkpoint.read_meta` checks the fields and their types (no torch).
5. ``python -m engine.models.checkpoint`` loads it in a separate process under a heap cap
   (`validator_memory`) and a time limit: the model config's bounds are checked before any
   model is built.

`unpack` (steps 1-3) blocks: `bot.store.catalog.Catalog.install` runs it and step 4 in a worker thread,
and waits for step 5's process, so the event loop only ever waits.
"""
from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

from bot.errors import CatalogError
from engine.formats.archive import (
    READ_ERRORS,
    ArchiveError,
    Caps,
    Member,
    copy_capped,
    members,
    safe_parts,
    survey,
)
from engine.models.checkpoint import MAX_META_BYTES, META, WEIGHTS

log = logging.getLogger(__name__)

# Entries of any kind. Two files, their folder and a "./" entry fit; a 100,000-member archive is
# refused at its 9th header (zip: from its end record, before its directory is parsed).
MAX_MEMBERS = 8
# Unpacked bytes per archive byte. Real checkpoints zip at 1.1-1.3 (weights hardly compress) and
# meta.json alone at 5-7; 12 MB of zip unpacking to 1 GB is about 85.
MAX_RATIO = 20.0
VALIDATE_TIMEOUT_S = 120.0  # wall clock for the validator process, torch import included (2-3 s)
# The validator's heap cap: Python, numpy and torch (about 250 MB measured loading a 14 MB
# checkpoint), then per byte of checkpoint its file, its hash, its tensors, the model and the
# copies load_state_dict makes. With the default 64 MiB cap: 1.15 GiB.
VALIDATOR_BASE_BYTES = 768 * 1024 * 1024
VALIDATOR_BYTES_PER_BYTE = 6


def caps(max_bytes: int) -> Caps:
    """The caps an uploaded archive must keep, with the settings' ``max_checkpoint_bytes``."""
    return Caps(members=MAX_MEMBERS, total_bytes=max_bytes, ratio=MAX_RATIO)


def validator_memory(max_bytes: int) -> int:
    """Bytes of heap the validator process may use for a checkpoint of at most ``max_bytes``."""
    return VALIDATOR_BASE_BYTES + VALIDATOR_BYTES_PER_BYTE * max_bytes


def unpack(data: bytes, filename: str, dest: Path, max_bytes: int) -> None:
    """Check the archive's member list against the caps, then write its two files into ``dest``.

    Blocking (decompression, disk): call it in a worker thread.

    Raises:
        CatalogError: over a cap, not exactly the two files, unsafe, or damaged; one line.
    """
    limits = caps(max_bytes)
    try:
        wanted = choose(survey(data, limits))
        for member in members(data, limits.stream_bytes):
            target = wanted.get(member.name)
            if target is None:
                continue
            src = member.open()
            if src is None:
                raise CatalogError(f"cannot read {target} in the archive")
            copy_capped(src, dest / target, member.size)
    except ArchiveError as exc:
        raise CatalogError(f"{filename}: {exc}") from exc
    except READ_ERRORS as exc:
        if isinstance(exc, OSError) and exc.errno is not None:  # the disk, not the archive (e.g. ENOSPC)
            raise CatalogError(f"could not write the checkpoint: {exc.strerror}") from exc
        # a damaged member found while unpacking (bad CRC, truncated stream)
        raise CatalogError(f"{filename}: a damaged archive ({type(exc).__name__})") from exc


def choose(listed: list[Member]) -> dict[str, str]:
    """The two files to unpack: member name as stored -> ``model.safetensors`` or ``meta.json``.

    Raises:
        CatalogError: a link or special file, an unsafe or nested path, another file, a
            duplicate, the two files in different folders, one missing, or meta.json too large.
    """
    chosen: dict[str, str] = {}
    folders: set[tuple[str, ...]] = set()
    others: list[str] = []
    for m in listed:
        try:
            parts = safe_parts(m.name)
        except ArchiveError as exc:
            raise CatalogError(f"the archive holds an {exc}") from exc
        if m.kind == "dir":
            continue
        if m.kind != "file":
            raise CatalogError(f"the archive holds a link or special file: {m.name!r}")
        if len(parts) > 2 or parts[-1] not in (WEIGHTS, META):  # a flat archive, or one folder holding the two
            others.append(m.name)
            continue
        if parts[-1] in chosen.values():
            raise CatalogError(f"the archive holds {parts[-1]} twice")
        if parts[-1] == META and m.size > MAX_META_BYTES:
            raise CatalogError(f"{META} is {m.size:,} bytes; at most {MAX_META_BYTES:,}")
        chosen[m.name] = parts[-1]
        folders.add(parts[:-1])
    if others:
        shown = ", ".join(repr(n) for n in others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
        raise CatalogError(f"the archive must hold only {WEIGHTS} and {META}; it also holds {shown}")
    if sorted(chosen.values()) != sorted([WEIGHTS, META]):
        missing = WEIGHTS if WEIGHTS not in chosen.values() else META
        raise CatalogError(f"the archive must hold {WEIGHTS} and {META}; {missing} is missing")
    if len(folders) > 1:
        raise CatalogError(f"{WEIGHTS} and {META} must sit side by side (flat, or in one folder)")
    return chosen


async def validate(folder: Path, max_bytes: int, timeout: float = VALIDATE_TIMEOUT_S) -> None:
    """Load the checkpoint with the engine's loader in a separate process (torch stays out of the
    bot), under `validator_memory` bytes of heap and ``timeout`` seconds.

    Raises:
        CatalogError: the loader's one-line refusal, the memory cap, or the time limit.
    """
    memory = validator_memory(max_bytes)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "engine.models.checkpoint", "--max-memory", str(memory), str(folder),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError as exc:
        raise CatalogError(f"validating the checkpoint took longer than {timeout:.0f} s") from exc
    finally:
        if proc.returncode is None:  # timed out or cancelled: never leave it running
            proc.kill()
            await proc.wait()
    line = (out.decode(errors="replace").strip().splitlines() or [""])[-1]
    if proc.returncode == 2 and line.startswith("invalid: "):
        raise CatalogError(line.removeprefix("invalid: ").removeprefix(f"checkpoint {folder.name}: "))
    if proc.returncode != 0:
        log.warning("checkpoint validator exited with %s: %s", proc.returncode, err.decode(errors="replace")[-400:])
        raise CatalogError(f"the checkpoint could not be loaded (validator exit {proc.returncode}; "
                           f"it may have needed more than {memory / 2**30:.2f} GiB of memory)")
