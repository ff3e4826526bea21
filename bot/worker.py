"""The worker process of the local queue: loads checkpoints once, composes jobs, writes the files.

This module runs in a child process (spawned, so no CUDA state is forked); it imports the engine's
composer only there, so the bot's own process never loads torch. Jobs arrive as
`bot.queue.WorkItem` payloads (the request as `engine.request.ComposeRequest.to_payload` wrote
it, not validated again); results are saved by `bot.policy.save_clip` into the job's folder.
"""
from __future__ import annotations

import logging
import signal
import traceback
from pathlib import Path
from typing import Any

from bot import policy
from bot.queue import WorkItem
from engine.errors import EngineError
from engine.settings import Settings

log = logging.getLogger(__name__)


def run_batch(composer: Any, settings: Settings, payloads: list[dict[str, Any]], send) -> None:
    """Compose several jobs, their sampling batched; report each as soon as it is done.

    ``send`` gets ``(kind, job_id, value)``: ``progress`` with a stage, ``done`` with the summary,
    ``error`` with the line for the user.
    """
    jobs, ready = [], []
    for payload in payloads:
        try:
            item = WorkItem.from_payload(payload)
        except EngineError as exc:
            send(("error", str(payload.get("job_id")), str(exc)))
            continue

        def progress(stage: str, job_id: str = item.job_id) -> None:
            send(("progress", job_id, stage))

        jobs.append((item.request, Path(settings.checkpoints_dir) / item.checkpoint, progress))
        ready.append(item)
    for item, outcome in zip(ready, composer.compose_many(jobs), strict=True):
        if isinstance(outcome, EngineError):
            send(("error", item.job_id, str(outcome)))
            continue
        if outcome.summary.get("checkpoint_hash") and not item.checkpoint_hash.startswith(outcome.summary["checkpoint_hash"]):
            log.warning("job %s: checkpoint %s changed since the job was accepted", item.job_id, item.checkpoint)
        try:
            send(("done", item.job_id, policy.save_clip(item.out_dir, outcome)))
        except ValueError as exc:  # over the size cap
            send(("error", item.job_id, str(exc)))


def worker_main(conn: Any, settings: Settings) -> None:
    """Serve jobs from the pipe until it sends None or closes."""
    from engine.compose import Composer

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    logging.basicConfig(level=getattr(logging, settings.log_level, logging.INFO),
                        format="chorus-worker: %(levelname)s %(message)s")
    composer = Composer(settings)
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        _, payloads = msg
        try:
            run_batch(composer, settings, payloads, conn.send)
        except Exception:  # a bug: report it in one line to the users, log the traceback here
            ids = [p.get("job_id") for p in payloads]
            log.error("jobs %s failed:\n%s", ids, traceback.format_exc())
            for job_id in ids:
                conn.send(("error", str(job_id), policy.INTERNAL_ERROR))
