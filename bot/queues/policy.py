"""The job rules both queue backends follow, and the lines users read when a job fails.

A job may *start* composing `MAX_ATTEMPTS` times: a worker that dies mid-job gets it retried once,
then it fails with `CRASHED_TWICE`. A job past the timeout fails with `timeout_message`; a bug
fails it with `INTERNAL_ERROR` (the traceback stays in the worker's log). A finished clip is
written by `save_clip` into the job's folder, with ``summary.json``, whichever backend ran it.
Status rows (`WorkerRow`) are what ``/chorus-admin queue`` shows for every backend.
"""
from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the engine's compose module is imported where a result is saved, not here
    from engine.compose.result import ComposeResult

MAX_ATTEMPTS = 2  # starts of one job (a crash, then one retry)
CRASHED_TWICE = "the composer crashed twice on this request"
INTERNAL_ERROR = "an internal error stopped this request (it has been logged)"
MAX_RESULT_BYTES = 24 * 1024 * 1024  # a clip's files together, as a worker returns them
MAX_SHEET_BYTES = 8 * 1024 * 1024  # a lead sheet's PNG and MusicXML: one Discord message (10 MiB) with room
MAX_DELIVERY_TRIES = 12  # tries to post a clip or a notice (backoff doubling to `MAX_BACKOFF_S`: about 2 h)
MAX_BACKOFF_S = 20 * 60


def may_start(attempt: int) -> bool:
    """Whether the ``attempt``-th start of a job (1 = the first) may compose."""
    return attempt <= MAX_ATTEMPTS


def delivery_backoff(tries: int, base_s: float) -> float:
    """Seconds to wait before the next try to reach a user, after ``tries`` that did not get through."""
    return min(MAX_BACKOFF_S, base_s * 2 ** max(0, tries - 1))


@dataclass(frozen=True)
class Outcome:
    """What one try to post a clip (or a failure notice) came to.

    Attributes:
        sent: the user sees it now.
        message_id: the message that carries it, when known.
        retry: not sent, for a reason that may pass (Discord busy or unreachable): try again later.
        reason: not sent, for good: what went wrong (the job fails with it).
    """

    sent: bool
    message_id: int | None = None
    retry: bool = False
    reason: str = ""


Posting = Callable[[], Awaitable[None]]  # records, before a new message is posted, that one may be


def timeout_message(timeout_s: float) -> str:
    return f"this request took longer than {timeout_s:.0f} s and was stopped"


def save_clip(out_dir: Path | str, result: ComposeResult, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write ``clip.<fmt>``, ``clip.mid``, ``clip.png``, ``clip.written.json`` (the notes as written,
    for the lead sheet; absent from an older worker's result) and ``summary.json`` into ``out_dir``.

    Each file is written beside its place and renamed, so a crash never leaves half a clip.

    Args:
        extra: more summary keys (e.g. which worker ran it).

    Returns:
        The summary with ``timings`` and ``files`` (kind -> path), as saved in ``summary.json``.

    Raises:
        ValueError: the files are over `MAX_RESULT_BYTES` together.
    """
    total = len(result.audio) + len(result.midi) + len(result.picture) + len(result.written)
    if total > MAX_RESULT_BYTES:
        raise ValueError(f"the clip's files are {total / 1e6:.1f} MB; at most {MAX_RESULT_BYTES / 1e6:.0f} MB can be returned")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = {"audio": (f"clip.{result.audio_format}", result.audio), "midi": ("clip.mid", result.midi),
            "picture": ("clip.png", result.picture)}
    if result.written:
        data["written"] = ("clip.written.json", result.written)
    files: dict[str, str] = {}
    for kind, (name, blob) in data.items():
        path = out / name
        tmp = path.with_name(name + ".part")
        tmp.write_bytes(blob)
        tmp.replace(path)
        files[kind] = str(path)
    summary = {**result.summary, "timings": result.timings, **(extra or {}), "files": files}
    (out / "summary.json").write_text(json.dumps(summary))
    return summary


def make_sheet(written_json: str) -> Any:
    """A clip's lead sheet (`engine.compose.sheet.Sheet`) from its written notes, in a worker.

    Raises:
        EngineError: the notes cannot be read or the sheet cannot be set.
    """
    from engine.compose.sheet import make_sheet as set_sheet
    from engine.music.written import Written

    return set_sheet(Written.from_json(written_json))


def save_sheet(out_dir: Path | str, musicxml: bytes, png: bytes, timings: dict[str, float] | None = None
               ) -> dict[str, Any]:
    """Write a clip's lead sheet, ``clip.musicxml`` and ``clip-sheet.png``, into its folder (each
    beside its place and renamed). Returns ``{"files": {"musicxml": path, "sheet": path}, "timings": ...}``.

    Raises:
        ValueError: the two files are over `MAX_SHEET_BYTES` together.
    """
    if len(musicxml) + len(png) > MAX_SHEET_BYTES:
        raise ValueError(f"the lead sheet is {(len(musicxml) + len(png)) / 1e6:.1f} MB; at most "
                         f"{MAX_SHEET_BYTES / 1e6:.0f} MB can be posted")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for kind, name, blob in (("musicxml", "clip.musicxml", musicxml), ("sheet", "clip-sheet.png", png)):
        path = out / name
        tmp = path.with_name(name + ".part")
        tmp.write_bytes(blob)
        tmp.replace(path)
        files[kind] = str(path)
    return {"files": files, "timings": timings or {}}


@dataclass(frozen=True)
class WorkerRow:
    """One worker in ``/chorus-admin queue``, from either backend.

    Attributes:
        name: the local worker's index or the Celery node name (``redis`` when Redis is away).
        alive: the process is running (local) or answered/beat recently (Celery).
        job: the job it runs now (the oldest, with several), or None.
        busy_s: how long it has run ``job``.
        restarts: times the local queue restarted it (Celery: its supervisor's business, 0).
        jobs: every job it runs now.
        device, pid: where it runs (Celery heartbeats).
        answers_inspect: it answered Celery's ``inspect`` (a busy ``solo`` worker cannot).
        error: why it is down, when known.
    """

    name: str
    alive: bool
    job: str | None = None
    busy_s: float = 0.0
    restarts: int = 0
    jobs: tuple[str, ...] = ()
    device: str | None = None
    pid: int | None = None
    answers_inspect: bool = False
    error: str = ""

