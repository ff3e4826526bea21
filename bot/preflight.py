"""What ``chorus serve`` needs before it connects, checked once: one line per missing part.

`problems` looks at the SoundFont, ffmpeg, the FluidSynth library and the installed checkpoints
(each must have a readable ``meta.json``); `check` (``chorus serve --check``) adds the token and
whether the database and data folders are writable. ``--check`` does not connect to Discord: a
login costs a gateway session start (Discord allows 1,000 a day), and a wrong or revoked token is
named on the first ``chorus serve`` anyway (one line naming DISCORD_TOKEN, exit code 2).
"""
from __future__ import annotations

import ctypes.util
import logging
import os
import shutil
from pathlib import Path

from bot.settings import BotSettings
from engine.models.checkpoint import CheckpointError, read_meta

log = logging.getLogger(__name__)


def problems(settings: BotSettings) -> list[str]:
    """What composing on this machine lacks, one line each (empty: nothing). With CHORUS_QUEUE=celery
    the workers render, so only the checkpoints (which the bot publishes to them) are looked at."""
    out = []
    if settings.queue == "celery":  # clips are rendered on the workers: only the checkpoints matter here
        return _checkpoints(settings)
    if not settings.soundfont.is_file():
        out.append(f"SoundFont not found: {settings.soundfont} (install fluid-soundfont-gm or set CHORUS_SOUNDFONT)")
    if shutil.which("ffmpeg") is None:
        out.append("ffmpeg not found on PATH (install ffmpeg): clips cannot be encoded")
    if ctypes.util.find_library("fluidsynth") is None:
        out.append("the FluidSynth library was not found (install fluidsynth): clips cannot be rendered")
    return out + _checkpoints(settings)


def _checkpoints(settings: BotSettings) -> list[str]:
    """A line per checkpoint folder whose meta.json does not read (as `bot.store.catalog.Catalog` lists them)."""
    out, installed = [], 0
    root = settings.checkpoints_dir
    for d in sorted(root.iterdir()) if root.is_dir() else []:
        if not d.is_dir() or d.name.startswith("."):
            continue
        try:
            read_meta(d)
            installed += 1
        except (CheckpointError, OSError) as exc:
            why = str(exc).removeprefix(f"checkpoint {d.name}: ")
            out.append(f"checkpoint {d.name} in {root} is not usable: {why}")
    if not installed:
        out.append(f"no checkpoint is installed in {settings.checkpoints_dir} (set CHORUS_CHECKPOINTS_DIR or CHORUS_HOME)")
    return out


def _writable(folder: Path) -> bool:
    """Whether ``folder`` is (or, created, would be) writable by this process."""
    for d in (folder, *folder.parents):
        if d.exists():
            return d.is_dir() and os.access(d, os.W_OK | os.X_OK)
    return False


def check(settings: BotSettings) -> list[str]:
    """Everything ``chorus serve --check`` looks at, one line per problem (empty: ready to serve)."""
    out = []
    if not settings.discord_token:
        out.append("DISCORD_TOKEN is not set (put it in .env or the environment; see .env.example)")
    if not _writable(settings.db_path.parent):
        out.append(f"the database folder {settings.db_path.parent} is not writable (CHORUS_DB_PATH)")
    if not _writable(settings.data_dir):
        out.append(f"the data folder {settings.data_dir} is not writable (CHORUS_DATA_DIR)")
    return out + problems(settings)


def warn(settings: BotSettings) -> None:
    """Log each missing part once, at startup; the bot still starts (workers may be elsewhere)."""
    for line in problems(settings):
        log.warning("%s", line)
