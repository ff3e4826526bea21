"""What travels through Celery: the job going out and the clip coming back, as JSON-safe data.

A job is `bot.queues.base.WorkItem.to_payload` less the bot's output folder (which stays with the
bot); its request is `engine.compose.request.ComposeRequest.to_payload`, unchanged. A worker answers
``{"result": ComposeResult.to_payload(), "worker": {...}}`` (the clip's bytes inline, base64,
size-capped: workers may run on other machines) or ``{"error": line}``. Workers' heartbeats
(JSON under ``WORKER_KEY``) become `bot.queues.policy.WorkerRow` rows in `worker_rows`. The bot saves the clip
with `bot.queues.policy.save_clip`, like the local backend.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bot.queues import policy
from bot.queues.base import WorkItem
from bot.queues.celery.app import HEARTBEAT_S
from bot.queues.policy import WorkerRow


def encode_item(item: WorkItem) -> dict[str, Any]:
    """A work item as the task's argument (the bot's output folder stays with the bot)."""
    payload = item.to_payload()
    del payload["out_dir"]
    return payload


def decode_item(payload: dict[str, Any]) -> WorkItem:
    """The work item `encode_item` wrote (without an output folder).

    Raises:
        RequestError: a malformed payload.
    """
    return WorkItem.from_payload({**payload, "out_dir": ""})


def pack_result(result: Any, worker: dict[str, Any]) -> dict[str, Any]:
    """A finished `engine.compose.result.ComposeResult` as the task's return value, from memory.

    Raises:
        ValueError: the clip's files are over `bot.queues.policy.MAX_RESULT_BYTES` together.
    """
    total = len(result.audio) + len(result.midi) + len(result.picture) + len(result.written)
    if total > policy.MAX_RESULT_BYTES:
        raise ValueError(f"the clip's files are {total / 1e6:.1f} MB; at most "
                         f"{policy.MAX_RESULT_BYTES / 1e6:.0f} MB can be returned")
    return {"result": result.to_payload(), "worker": worker}


def pack_sheet(musicxml: bytes, png: bytes, timings: dict[str, float], worker: dict[str, Any]) -> dict[str, Any]:
    """A clip's lead sheet as the task's return value (base64, like a clip)."""
    import base64

    return {"sheet": {"musicxml": base64.b64encode(musicxml).decode("ascii"),
                      "png": base64.b64encode(png).decode("ascii"), "timings": timings}, "worker": worker}


def unpack_result(info: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """Save a packed result's clip (or lead sheet) into ``out_dir``; returns the summary with local
    ``files`` paths.

    Raises:
        EngineError: a malformed result payload.
        ValueError: more than `bot.queues.policy.MAX_RESULT_BYTES`.
    """
    if isinstance(info.get("sheet"), dict):
        return _unpack_sheet(info["sheet"], out_dir)
    from engine.compose.result import (
        ComposeResult,  # numpy and the engine's music code; never torch
    )

    packed = info.get("result")
    if isinstance(packed, dict):
        size = sum(len(str(packed.get(k, ""))) for k in ("audio", "midi", "picture", "written")) * 3 // 4
        if size > policy.MAX_RESULT_BYTES:
            raise ValueError(f"a worker's result is over {policy.MAX_RESULT_BYTES / 1e6:.0f} MB")
    result = ComposeResult.from_payload(packed)
    worker = info.get("worker")
    return policy.save_clip(out_dir, result, {"worker": worker} if isinstance(worker, dict) else None)


def _unpack_sheet(sheet: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    import base64
    import binascii

    from engine.errors import EngineError

    try:
        musicxml, png = (base64.b64decode(str(sheet[k]), validate=True) for k in ("musicxml", "png"))
    except (KeyError, binascii.Error, ValueError) as exc:
        raise EngineError("a worker's lead sheet is not base64") from exc
    timings = sheet.get("timings") if isinstance(sheet.get("timings"), dict) else {}
    return policy.save_sheet(out_dir, musicxml, png, timings)


def worker_rows(beats: dict[str, dict[str, Any]], active: dict[str, list[dict[str, Any]]]) -> list[WorkerRow]:
    """One row per worker node: alive when it answered ``inspect`` or its heartbeat is fresh.

    A ``solo`` worker busy with a job cannot answer ``inspect`` until the job ends; its heartbeat
    (a thread) still tells what it runs.
    """
    now = time.time()
    rows = []
    for node in sorted(set(beats) | set(active)):
        beat = beats.get(node, {})
        jobs = dict(beat.get("jobs") or {})
        for task in active.get(node, []):
            jobs.setdefault(str(task.get("id")), now)  # its time_start is the worker's monotonic clock
        first = min(jobs, key=jobs.get) if jobs else None
        alive = node in active or now - float(beat.get("at", 0)) < HEARTBEAT_S * 3
        rows.append(WorkerRow(node, alive, first, round(now - jobs[first], 1) if first else 0.0, 0, tuple(sorted(jobs)),
                              beat.get("device"), beat.get("pid"), node in active))
    return rows
