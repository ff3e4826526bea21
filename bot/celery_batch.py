"""Batched composing for Celery workers (``CHORUS_BATCH_MAX`` > 1).

Each compose task still is one Celery task with its own message, state and result: the task's
thread (the worker runs the ``threads`` pool with ``batch_max`` slots per lane) hands its job to
the process's `Batcher` and waits for its clip. A lane that is free takes every waiting job, up to
``batch_max``, after waiting at most ``CHORUS_BATCH_WINDOW_MS`` from the first one's arrival for
more to come, and samples them as one batch with `engine.compose.Composer.compose_many`. Each
clip goes back to its task as soon as it is rendered, so Celery stores that result and only then
acknowledges that task's message (late acks, one message at a time): a worker killed mid-batch
leaves the unfinished tasks unacknowledged, and the broker redelivers them.

Time limits apply to the batch as a whole, measured from its start (`bot.celery_worker.Deadline`
in the lane's thread): a batch of n jobs gets n times the job timeout (`bot.celery_app.time_limits`).
At the soft limit, the batch's unfinished jobs fail with the timeout message and the worker goes
on; at the hard limit they get the timeout as their stored result and the process ends for its
supervisor to restart.
"""
from __future__ import annotations

import contextlib
import logging
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded

from bot import policy
from bot.celery_payload import pack_result
from engine.errors import EngineError

log = logging.getLogger(__name__)

Packed = dict[str, Any]  # a task's return value: {"result": ..., "worker": ...} or {"error": line}


@dataclass
class BatchJob:
    """One task's job waiting for a lane: what to compose and where its outcome goes."""

    job_id: str
    request: Any  # engine.request.ComposeRequest
    checkpoint: Path
    checkpoint_hash: str
    report: Callable[[str], None]  # progress stages, from the lane's thread
    started: float  # time.time() the task started
    outcome: Future[Packed] = field(default_factory=Future)
    queued_at: float = field(default_factory=time.monotonic)

    def finish(self, packed: Packed) -> None:
        """Hand the outcome to the waiting task (the first one counts: the hard limit's timer may race the lane)."""
        with contextlib.suppress(InvalidStateError):
            self.outcome.set_result(packed)


class Batcher:
    """Lanes that compose waiting jobs in batches (see the module docstring).

    Args:
        composer: returns the process's `engine.compose.Composer` (created on first use).
        deadline: builds the `Deadline` for a batch from its size and its hard-limit handler.
        on_hard: the hard-limit handler: gets the batch's unfinished jobs (it stores their timeout
            results and ends the process).
        soft_s: the job timeout, for the timeout message.
        batch_max: most jobs in one batch.
        window_s: longest wait, from the first waiting job's arrival, for more jobs to join.
        lanes: batches composed at once (threads).
        info: the ``worker`` summary fields added to each result (node name).
    """

    def __init__(self, composer: Callable[[], Any], deadline: Callable[[int, Callable[[], None]], Any],
                 on_hard: Callable[[list[BatchJob]], None], soft_s: float, batch_max: int, window_s: float,
                 lanes: int, info: dict[str, Any]) -> None:
        self._composer, self._deadline, self._on_hard, self._soft_s = composer, deadline, on_hard, soft_s
        self.batch_max, self.window_s, self.info = batch_max, window_s, info
        self._pending: list[BatchJob] = []
        self._cond = threading.Condition()
        self._stopped = False
        self._threads = [threading.Thread(target=self._lane, name=f"chorus-batch-{i}", daemon=True)
                         for i in range(lanes)]
        for t in self._threads:
            t.start()

    def submit(self, job: BatchJob) -> Packed:
        """Queue a job and wait for its outcome (called in the task's thread)."""
        with self._cond:
            if self._stopped:
                return {"error": policy.INTERNAL_ERROR}
            self._pending.append(job)
            self._cond.notify_all()
        return job.outcome.result()

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def _take(self) -> list[BatchJob] | None:
        """The next batch: waits for a first job, then up to the window for more."""
        with self._cond:
            while not self._pending and not self._stopped:
                self._cond.wait()
            if self._stopped:
                return None
            until = self._pending[0].queued_at + self.window_s
            while len(self._pending) < self.batch_max and (left := until - time.monotonic()) > 0:
                self._cond.wait(left)
            batch, self._pending[:] = self._pending[:self.batch_max], self._pending[self.batch_max:]
            return batch

    def _lane(self) -> None:
        while (batch := self._take()) is not None:
            try:
                self.run(batch)
            finally:  # nothing waits forever, whatever happened
                for job in batch:
                    job.finish({"error": policy.INTERNAL_ERROR})

    def run(self, batch: list[BatchJob]) -> None:
        """Compose one batch; each job's outcome is handed back as soon as it is ready."""
        ids = [j.job_id for j in batch]
        log.info("composing a batch of %d: %s", len(batch), ", ".join(ids))
        try:
            composer = self._composer()  # outside the time limit: the first job imports torch
        except Exception:
            log.error("jobs %s: no composer:\n%s", ids, traceback.format_exc())
            return
        left = list(batch)
        deadline = self._deadline(len(batch), lambda: self._on_hard(list(left)))
        try:
            with deadline:
                outcomes = composer.compose_many([(j.request, j.checkpoint, j.report) for j in batch])
                for job, outcome in zip(batch, outcomes, strict=True):
                    job.finish(self._pack(job, outcome, len(batch)))
                    left.remove(job)
        except SoftTimeLimitExceeded:
            deadline.cancel()
            log.warning("jobs %s passed the time limit of a batch of %d", [j.job_id for j in left], len(batch))
            for job in left:
                job.finish({"error": policy.timeout_message(self._soft_s)})
        except Exception:  # a bug: one line for the users, the traceback in this worker's log
            log.error("jobs %s failed:\n%s", [j.job_id for j in left], traceback.format_exc())

    def _pack(self, job: BatchJob, outcome: Any, size: int) -> Packed:
        if isinstance(outcome, EngineError):
            return {"error": str(outcome)}
        got = outcome.summary.get("checkpoint_hash")
        if got and not job.checkpoint_hash.startswith(got):
            log.warning("job %s: its checkpoint changed since the job was accepted", job.job_id)
        try:
            return pack_result(outcome, {**self.info, "started_at": job.started, "finished_at": time.time(),
                                         "batch": size})
        except ValueError as exc:  # the files are over the cap
            return {"error": str(exc)}
