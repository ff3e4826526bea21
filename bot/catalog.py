"""Installed checkpoints: listing, the active one per style, and safe installs of uploaded archives.

An uploaded archive (zip or tar, optionally compressed) must hold exactly ``model.safetensors``
and ``meta.json``. It is size-capped, unpacked member by member into a fresh folder inside the
checkpoints directory (no absolute paths, no ``..``, no links or devices), then validated by the
engine's loader in a separate process before it is listed. Nothing is ever unpickled.
"""
from __future__ import annotations

import asyncio
import logging
import re
import shutil
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.errors import CatalogError
from engine.archive import ArchiveError, copy_capped, members, safe_parts
from engine.checkpoint import META, WEIGHTS, CheckpointError, read_meta

log = logging.getLogger(__name__)
MAX_MEMBER_BYTES = 48 * 1024 * 1024
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,40}$")


@dataclass
class Installed:
    name: str
    style: str
    meta: dict[str, Any]

    @property
    def content_hash(self) -> str:
        return str(self.meta["content_hash"])

    def describe(self) -> str:
        m = self.meta.get("metrics", {})
        nll = m.get("valid_nll")
        ngram = m.get("ngram_nll")
        size = self.meta.get("size_bytes", 0) / 1e6
        score = f"NLL {nll:.3f}" + (f" (n-gram {ngram:.3f})" if ngram else "") if nll else "no metrics"
        return f"{self.name}: {self.style}, {score}, {size:.1f} MB, {self.content_hash[:12]}"


class Catalog:
    """The checkpoints folder and which checkpoint serves each style."""

    def __init__(self, root: Path, max_archive_bytes: int) -> None:
        self.root = Path(root)
        self.max_archive_bytes = max_archive_bytes  # the settings' max_checkpoint_bytes
        self.active: dict[str, str] = {}  # style -> checkpoint name (admin choices, from the database)

    def installed(self) -> list[Installed]:
        out = []
        for d in sorted(self.root.iterdir()) if self.root.is_dir() else []:
            if not d.is_dir() or d.name.startswith("."):
                continue
            try:
                meta = read_meta(d)
            except CheckpointError as exc:
                log.warning("ignoring checkpoint folder %s: %s", d.name, exc)
                continue
            out.append(Installed(d.name, str(meta.get("style") or d.name), meta))
        return out

    def get(self, name: str) -> Installed | None:
        return next((c for c in self.installed() if c.name == name), None)

    def styles(self) -> dict[str, Installed]:
        """style -> the checkpoint serving it (the admin's choice, else the folder named like the style)."""
        installed = {c.name: c for c in self.installed()}
        out: dict[str, Installed] = {}
        for c in installed.values():
            if c.name == c.style:
                out[c.style] = c
        for style, name in self.active.items():
            if name in installed:
                out[style] = installed[name]
        return out

    def resolve(self, style: str) -> Installed:
        styles = self.styles()
        if style not in styles:
            raise CatalogError(f"unknown style {style!r}: choose from {', '.join(sorted(styles)) or 'none installed'}")
        return styles[style]

    async def install(self, data: bytes, filename: str, name: str | None = None) -> Installed:
        """Unpack and validate an uploaded checkpoint archive. Raises CatalogError."""
        if len(data) > self.max_archive_bytes:
            raise CatalogError(f"the archive is {len(data) / 1e6:.1f} MB; at most {self.max_archive_bytes / 1e6:.0f} MB")
        if name is not None and not NAME_RE.match(name):
            raise CatalogError("a checkpoint name uses lowercase letters, digits, '-', '_' or '.' (at most 41)")
        self.root.mkdir(parents=True, exist_ok=True)
        staging = self.root / f".install-{uuid.uuid4().hex[:8]}"
        staging.mkdir()
        try:
            members = _unpack(data, filename, staging)
            if sorted(members) != sorted([WEIGHTS, META]):
                raise CatalogError(f"the archive must hold exactly {WEIGHTS} and {META}, found {', '.join(sorted(members)) or 'nothing'}")
            await _validate(staging)
            meta = read_meta(staging)
            final = name or f"{meta.get('style', 'custom')}-{str(meta['content_hash'])[:8]}"
            if not NAME_RE.match(final):
                raise CatalogError(f"cannot name the checkpoint {final!r}")
            target = self.root / final
            if target.exists():
                raise CatalogError(f"a checkpoint named {final!r} is already installed")
            staging.rename(target)
            return Installed(final, str(meta.get("style") or final), meta)
        except CheckpointError as exc:
            raise CatalogError(str(exc)) from exc
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)


def _safe_name(raw: str) -> str:
    try:
        parts = safe_parts(raw)
    except ArchiveError as exc:
        raise CatalogError(f"the archive holds an {exc}") from exc
    if len(parts) > 2:  # a flat archive, or one folder holding the two files
        raise CatalogError(f"the archive holds an unexpected path: {raw!r}")
    return parts[-1]


def _unpack(data: bytes, filename: str, dest: Path) -> list[str]:
    names: list[str] = []
    try:
        for member in members(data):
            if member.kind == "dir":
                continue
            if member.kind != "file":
                raise CatalogError(f"the archive holds a link or special file: {member.name!r}")
            name = _safe_name(member.name)
            if member.size > MAX_MEMBER_BYTES:
                raise CatalogError(f"{name} is too large ({member.size / 1e6:.1f} MB)")
            if (dest / name).exists():
                raise CatalogError(f"the archive holds {name} twice")
            src = member.open()
            if src is None:
                raise CatalogError(f"cannot read {name} in the archive")
            copy_capped(src, dest / name, MAX_MEMBER_BYTES)
            names.append(name)
    except ArchiveError as exc:
        raise CatalogError(f"{filename}: {exc}") from exc
    return names


async def _validate(folder: Path, timeout: float = 120.0) -> None:
    """Load the checkpoint with the engine's loader in a separate process (torch stays out of the bot)."""
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "engine.checkpoint", str(folder),
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError as exc:
        proc.kill()
        raise CatalogError("validating the checkpoint took too long") from exc
    line = out.decode(errors="replace").strip().splitlines()[-1:] or [""]
    if proc.returncode != 0:
        raise CatalogError(line[0].removeprefix("invalid: ") or "the checkpoint could not be loaded")
