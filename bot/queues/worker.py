"""The worker process of the local queue: loads checkpoints once, composes jobs, writes the files.

This module runs in a child process (spawned, so no CUDA state is forked); it imports the engine's
composer only there, so the bot's own process never loads torch. Jobs arrive as
`bot.queues.base.WorkItem` payloads (the request as `engine.compose.request.ComposeRequest.to_payload` wrote
it, not validated again); results are saved by `bot.queues.policy.save_clip` into the job's folder.

As it starts, a worker times a clip of each installed style (`time_clips`, at most
``warm_styles``) and says so (``("warm", "", seconds)``): the bot's wait estimate
(`bot.service.estimate`) then starts from what this machine measured, not from a guess.

Each worker runs one `engine.compose.pipeline.Pipeline`: while a batch renders and encodes, the next one
(sent by the parent once this one says ``ready``) is already sampling. Messages to the parent come
from the pipeline's threads and this one, so they share a lock.
"""
from __future__ import annotations

import logging
import os
import signal
import statistics
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.memory import return_large_buffers
from bot.queues import policy
from bot.queues.base import WorkItem
from engine.errors import EngineError
from engine.settings import Settings

log = logging.getLogger(__name__)
Send = Callable[[tuple], None]
WARM_CLIP_S = 30.0  # the clip a starting worker times: /compose's default length


#: Workers yield the CPU to the bot's process when both want it: the bot's event loop must answer
#: Discord within 3 s, a clip can wait a few milliseconds. On an idle machine it changes nothing.
NICENESS = 5


def time_clips(composer: Any, settings: Settings, styles: int) -> float | None:
    """Seconds one clip of `WARM_CLIP_S` took, the median over the first ``styles`` installed
    checkpoints (the first one's time includes the cold start, so a lone style errs long), or None
    when none could be composed."""
    from engine.compose.request import ComposeRequest
    from engine.models.checkpoint import read_meta

    root, times = Path(settings.checkpoints_dir), []
    length = min(max(WARM_CLIP_S, settings.min_seconds), settings.max_seconds)
    for name in composer.styles()[:styles]:
        try:
            style = str(read_meta(root / name)["style"])
            req = ComposeRequest.build(style, length, settings, [style])
            start = time.monotonic()
            composer.compose(req, root / name)
            times.append(time.monotonic() - start)
        except Exception as exc:  # a checkpoint that cannot compose is refused by its jobs; the timing goes on
            log.warning("could not time a clip of checkpoint %s: %s", name, exc)
    return statistics.median(times) if times else None


def submit_batch(pipeline: Any, settings: Settings, payloads: list[dict[str, Any]], send: Send,
                 cancels: dict[str, threading.Event] | None = None) -> None:
    """Hand several jobs to the worker's `engine.compose.pipeline.Pipeline` (their sampling batched); each is
    reported as soon as it is done, while the next batch may already be sampling.

    ``send`` gets ``(kind, job_id, value)``: ``progress`` with a stage, ``done`` with the summary,
    ``error`` with the line for the user, and ``ready`` (no job) once the batch is sampled, when
    the parent may send the next one. ``cancels`` gets each job's stop event while it is in the
    pipeline (the parent's ``("cancel", job_id)`` sets it).
    """
    cancels = {} if cancels is None else cancels
    jobs, ready = [], []
    for payload in payloads:
        try:
            item = WorkItem.from_payload(payload)
        except EngineError as exc:
            send(("error", str(payload.get("job_id")), str(exc)))
            continue
        if item.sheet:  # a clip's lead sheet, set here at once (well under a second)
            sheet_job(item, send)
            continue

        def progress(stage: str, job_id: str = item.job_id) -> None:
            send(("progress", job_id, stage))

        jobs.append((item.request, Path(settings.checkpoints_dir) / item.checkpoint, progress))
        ready.append(item)
    stops = [cancels.setdefault(item.job_id, threading.Event()) for item in ready]

    def deliver(index: int, outcome: Any) -> None:
        cancels.pop(ready[index].job_id, None)
        report(ready[index], outcome, send)

    if not jobs:
        send(("ready", "", ""))
        return
    pipeline.submit(jobs, deliver, sampled=lambda: send(("ready", "", "")), stops=stops)


def sheet_job(item: WorkItem, send: Send) -> None:
    """Set a clip's lead sheet and send ``done`` with its files, or the line for the user."""
    try:
        sheet = policy.make_sheet(item.sheet)
        send(("done", item.job_id, policy.save_sheet(item.out_dir, sheet.musicxml, sheet.png, sheet.timings)))
    except (EngineError, ValueError) as exc:
        send(("error", item.job_id, str(exc)))
    except Exception:
        log.error("job %s: the lead sheet failed:\n%s", item.job_id, traceback.format_exc())
        send(("error", item.job_id, policy.INTERNAL_ERROR))


def report(item: WorkItem, outcome: Any, send: Send) -> None:
    """Send one job's outcome: its saved files, the engine's line, or (a bug) the internal error."""
    if isinstance(outcome, EngineError):
        send(("error", item.job_id, str(outcome)))
        return
    if isinstance(outcome, BaseException):  # a bug: one line for the user, the traceback here
        log.error("job %s failed:\n%s", item.job_id,
                  "".join(traceback.format_exception(type(outcome), outcome, outcome.__traceback__)))
        send(("error", item.job_id, policy.INTERNAL_ERROR))
        return
    if outcome.summary.get("checkpoint_hash") and not item.checkpoint_hash.startswith(outcome.summary["checkpoint_hash"]):
        log.warning("job %s: checkpoint %s changed since the job was accepted", item.job_id, item.checkpoint)
    try:
        send(("done", item.job_id, policy.save_clip(item.out_dir, outcome)))
    except ValueError as exc:  # over the size cap
        send(("error", item.job_id, str(exc)))
    except Exception:
        log.error("job %s: saving failed:\n%s", item.job_id, traceback.format_exc())
        send(("error", item.job_id, policy.INTERNAL_ERROR))


def worker_main(conn: Any, settings: Settings, warm_styles: int = 0) -> None:
    """Serve jobs from the pipe until it sends None or closes; batches go through one pipeline, and
    ``("cancel", job_id)`` stops a job the pipeline holds. First, with ``warm_styles``, time a clip
    of that many styles and send ``("warm", "", seconds or None)``."""
    from engine.compose.composer import Composer
    from engine.compose.pipeline import Pipeline

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    os.nice(NICENESS)
    return_large_buffers()
    logging.basicConfig(level=getattr(logging, settings.log_level, logging.INFO),
                        format="chorus-worker: %(levelname)s %(message)s")
    lock = threading.Lock()

    def send(msg: tuple) -> None:  # the pipeline's threads and this one share the pipe
        with lock:
            conn.send(msg)

    composer = Composer(settings, preload=True, numpy=settings.sampler == "numpy")
    if warm_styles > 0:
        send(("warm", "", time_clips(composer, settings, warm_styles)))
    cancels: dict[str, threading.Event] = {}  # job id -> its stop, while in the pipeline
    with Pipeline(composer) as pipeline:
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                return
            if msg is None:
                return
            kind, payloads = msg
            if kind == "cancel":
                if (event := cancels.get(payloads)) is not None:
                    event.set()
                continue
            try:
                submit_batch(pipeline, settings, payloads, send, cancels)
            except Exception:  # a bug: report it in one line to the users, log the traceback here
                ids = [p.get("job_id") for p in payloads]
                log.error("jobs %s failed:\n%s", ids, traceback.format_exc())
                for job_id in ids:
                    send(("error", str(job_id), policy.INTERNAL_ERROR))
                send(("ready", "", ""))
