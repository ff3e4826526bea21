"""Installed checkpoints: listing, the active one per style, installs of uploaded archives, removal.

Listing never fails on a bad folder: one whose ``meta.json`` does not pass
`engine.models.checkpoint.read_meta` (missing, corrupt, wrong types) is left out of the styles, kept in
`Catalog.broken` with its reason for ``/chorus-admin checkpoints``, logged once, and can be
removed. Installs go through `bot.store.install` (caps before anything is written, the work off the
event loop); a checkpoint that serves a style cannot be removed.
"""
from __future__ import annotations

import asyncio
import logging
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.errors import CatalogError
from bot.store.install import unpack, validate
from engine.band.styles import STYLES
from engine.models.checkpoint import CheckpointError, read_meta

log = logging.getLogger(__name__)
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,40}$")


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


@dataclass
class Installed:
    name: str
    style: str
    meta: dict[str, Any]

    @property
    def content_hash(self) -> str:
        return str(self.meta["content_hash"])

    def describe(self) -> str:
        """One line for /styles and /chorus-admin; tolerant of odd meta (a number shown only if it is one)."""
        m = self.meta.get("metrics")
        m = m if isinstance(m, dict) else {}
        nll, ngram = _number(m.get("valid_nll")), _number(m.get("ngram_nll"))
        size = (_number(self.meta.get("size_bytes")) or 0) / 1e6
        score = f"NLL {nll:.3f}" + (f" (n-gram {ngram:.3f})" if ngram else "") if nll else "no metrics"
        return f"{self.name}: {self.style}, {score}, {size:.1f} MB, {str(self.meta.get('content_hash', ''))[:12]}"


class Catalog:
    """The checkpoints folder and which checkpoint serves each style."""

    def __init__(self, root: Path, max_archive_bytes: int) -> None:
        self.root = Path(root)
        # the settings' max_checkpoint_bytes: caps an archive and, separately, what it unpacks to
        self.max_archive_bytes = max_archive_bytes
        self.active: dict[str, str] = {}  # style -> checkpoint name (admin choices, from the database)
        self.broken: dict[str, str] = {}  # folder name -> why it is not listed (as of the last listing)
        # folder name -> (meta.json's mtime_ns and size, its parsed meta): /compose, autocomplete and
        # /styles list the folder on the event loop, and parsing every meta.json took ~2.5 ms a listing
        self._metas: dict[str, tuple[tuple[int, int], dict]] = {}

    def installed(self) -> list[Installed]:
        out, broken, metas = [], {}, {}
        for d in sorted(self.root.iterdir()) if self.root.is_dir() else []:
            if not d.is_dir() or d.name.startswith("."):
                continue
            try:
                st = (d / "meta.json").stat()
                stamp = (st.st_mtime_ns, st.st_size)
                cached = self._metas.get(d.name)
                meta = cached[1] if cached and cached[0] == stamp else read_meta(d)
                metas[d.name] = (stamp, meta)
            except (CheckpointError, OSError) as exc:
                broken[d.name] = str(exc).removeprefix(f"checkpoint {d.name}: ")
                if self.broken.get(d.name) != broken[d.name]:  # once per folder and reason, not per /styles
                    log.warning("ignoring checkpoint folder %s: %s", d.name, broken[d.name])
                continue
            out.append(Installed(d.name, str(meta.get("style") or d.name), meta))
        self.broken, self._metas = broken, metas
        return out

    def clear_staging(self) -> int:
        """Remove what an install interrupted by a crash left (``.install-*`` folders); returns how many."""
        left = [d for d in self.root.glob(".install-*") if d.is_dir()] if self.root.is_dir() else []
        for d in left:
            shutil.rmtree(d, ignore_errors=True)
        if left:
            log.info("removed %d unfinished checkpoint install(s)", len(left))
        return len(left)

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
        """Unpack and validate an uploaded checkpoint archive (see `bot.store.install`). Raises CatalogError."""
        if len(data) > self.max_archive_bytes:
            raise CatalogError(f"the archive is {len(data) / 1e6:.1f} MB; at most {self.max_archive_bytes / 1e6:.0f} MB")
        if name is not None and not NAME_RE.match(name):
            raise CatalogError("a checkpoint name uses lowercase letters, digits, '-', '_' or '.' (at most 41)")
        staging = self.root / f".install-{uuid.uuid4().hex[:8]}"
        await asyncio.to_thread(staging.mkdir, parents=True)
        try:
            await asyncio.to_thread(unpack, data, filename, staging, self.max_archive_bytes)
            meta = await asyncio.to_thread(read_meta, staging)  # field types, before torch is started
            if meta.get("style") not in STYLES:  # it would be listed, then every /compose of it would fail
                raise CatalogError(f"this checkpoint is for style {str(meta.get('style'))[:40]!r}, which Chorus cannot "
                                   f"compose; registered styles: {', '.join(sorted(STYLES))}")
            await validate(staging, self.max_archive_bytes)
            final = name or f"{meta.get('style') or 'custom'}-{str(meta['content_hash'])[:8]}"
            if not NAME_RE.match(final):
                raise CatalogError(f"cannot name the checkpoint {final!r}")
            target = self.root / final
            if target.exists() or target.is_symlink():
                raise CatalogError(f"a checkpoint named {final!r} is already installed")
            try:
                staging.rename(target)
            except OSError as exc:  # another install took the name meanwhile
                raise CatalogError(f"a checkpoint named {final!r} is already installed") from exc
            return Installed(final, str(meta.get("style") or final), meta)
        except CheckpointError as exc:
            raise CatalogError(str(exc).removeprefix(f"checkpoint {staging.name}: ")) from exc
        finally:
            await asyncio.to_thread(shutil.rmtree, staging, ignore_errors=True)

    async def remove(self, name: str) -> None:
        """Delete an installed checkpoint that serves no style (a broken one too), off the event loop.

        Raises:
            CatalogError: not a checkpoint name, no such checkpoint, or it serves a style.
        """
        if not NAME_RE.match(name):
            raise CatalogError(f"{name[:60]!r} is not a checkpoint name (lowercase letters, digits, '-', '_', '.')")
        folder = self.root / name
        if not folder.is_dir():
            raise CatalogError(f"no checkpoint named {name!r} is installed")
        serving = sorted(style for style, ck in self.styles().items() if ck.name == name)
        if serving:
            raise CatalogError(f"{name} serves {', '.join(serving)}; point that at another checkpoint "
                               f"with /chorus-admin use first")
        await asyncio.to_thread(_delete, folder)
        self.broken.pop(name, None)
        log.info("removed checkpoint %s", name)


def _delete(folder: Path) -> None:
    """Remove a checkpoint folder: a link only as a link; a folder renamed away first, so it leaves
    the listing at once, then deleted."""
    if folder.is_symlink():
        folder.unlink()
        return
    doomed = folder.with_name(f".remove-{uuid.uuid4().hex[:8]}")
    folder.rename(doomed)
    shutil.rmtree(doomed)
