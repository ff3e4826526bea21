"""Batched composing for Celery workers (``CHORUS_BATCH_MAX`` > 1).

Each compose task still is one Celery task with its own message, state and result: the task's
thread (the worker runs the ``threads`` pool with ``batch_max`` slots per lane) hands its job to
the process's `Batcher` and waits for its clip. A lane that is free takes every waiting job, up to
``batch_max``, after waiting at most ``CHORUS_BATCH_WINDOW_MS`` from the first one's arrival (or from the lane
becoming free, if later) for more to come, and hands them as one batch to its `engine.compose.pipeline.Pipeline` (sampling, rendering
and encoding on three threads). Once a batch is sampled the lane may take the next, so the next
batch samples while the previous one renders and encodes; at most two batches are in flight per
lane, as in the local worker. Each clip goes back to its task as soon as it is encoded, so Celery
stores that result and only then acknowledges that task's message (late acks, one message at a
time): a worker killed mid-batch leaves the unfinished tasks unacknowledged, and the broker
redelivers them.

Time limits apply to the batch as a whole, measured from its submission to the pipeline: a batch
of n jobs gets n times the job timeout (`bot.queues.celery.app.time_limits`). The lane's thread enforces
them on the batch's outcomes while it waits: at the soft limit, the batch's unfinished jobs fail
with the timeout message, the pipeline is told to give up the batch (`Stopped` at its next
sampling step or MIDI event) and the worker goes on; if the pipeline has still not let go of the
batch at the hard limit (stuck in native code), the unfinished jobs get the timeout as their
stored result and the process ends for its supervisor to restart.
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

from bot.queues import policy
from bot.queues.celery.payload import pack_result
from engine.errors import EngineError

log = logging.getLogger(__name__)

IN_FLIGHT = 2  # batches a lane's pipeline holds at once: one samples while the other renders and encodes
POLL_S = 0.5  # longest a lane waits without looking at its batches' time limits
Packed = dict[str, Any]  # a task's return value: {"result": ..., "worker": ...} or {"error": line}


@dataclass
class BatchJob:
    """One task's job waiting for a lane: what to compose and where its outcome goes."""

    job_id: str
    request: Any  # engine.compose.request.ComposeRequest
    checkpoint: Path
    checkpoint_hash: str
    report: Callable[[str], None]  # progress stages, from the pipeline's threads
    started: float  # time.time() the task started
    outcome: Future[Packed] = field(default_factory=Future)
    queued_at: float = field(default_factory=time.monotonic)
    stop: threading.Event = field(default_factory=threading.Event)  # its own: set when its task is revoked

    def finish(self, packed: Packed) -> None:
        """Hand the outcome to the waiting task (the first one counts: a time limit may race the pipeline)."""
        with contextlib.suppress(InvalidStateError):
            self.outcome.set_result(packed)



@dataclass
class _Flight:
    """One batch in a lane's pipeline and its time limits (`time.monotonic` seconds)."""

    jobs: list[BatchJob]
    soft_at: float
    hard_at: float
    stop: threading.Event = field(default_factory=threading.Event)
    sampled: bool = False
    delivered: int = 0  # outcomes the pipeline delivered (after a time limit too)
    timed_out: bool = False

    @property
    def done(self) -> bool:
        return self.delivered >= len(self.jobs)

    def next_limit(self) -> float:
        return self.hard_at if self.timed_out else self.soft_at


class Batcher:
    """Lanes that compose waiting jobs in batches (see the module docstring).

    Args:
        composer: returns the process's `engine.compose.composer.Composer` (created on first use).
        limits: the (soft, hard) time limits in seconds of a batch of n jobs.
        on_hard: the hard-limit handler: gets the batch's unfinished jobs (it stores their timeout
            results and ends the process).
        soft_s: the job timeout, for the timeout message.
        batch_max: most jobs in one batch.
        window_s: longest wait, from the first waiting job's arrival, for more jobs to join.
        lanes: batches composed at once (threads, each with its own pipeline).
        info: the ``worker`` summary fields added to each result (node name).
        pipeline: builds a lane's pipeline from the composer (default `engine.compose.pipeline.Pipeline`).
        revoked: whether a job's task was revoked (an admin's cancel); a revoked job in flight is
            stopped from its render on. Default: never.
    """

    def __init__(self, composer: Callable[[], Any], limits: Callable[[int], tuple[float, float]],
                 on_hard: Callable[[list[BatchJob]], None], soft_s: float, batch_max: int, window_s: float,
                 lanes: int, info: dict[str, Any], pipeline: Callable[[Any], Any] | None = None,
                 revoked: Callable[[str], bool] | None = None) -> None:
        self._composer, self._limits, self._on_hard, self._soft_s = composer, limits, on_hard, soft_s
        self._pipeline = pipeline
        self._revoked = revoked or (lambda _job_id: False)
        self.batch_max, self.window_s, self.info = batch_max, window_s, info
        self._pending: list[BatchJob] = []
        self._cond = threading.Condition()
        self._stopped = False
        self._threads = [threading.Thread(target=_Lane(self).run, name=f"chorus-batch-{i}", daemon=True)
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

    def _take(self, patience: float | None = None, ready_at: float = 0.0) -> list[BatchJob] | None:
        """The next batch: waits for a first job, then up to the window for more, counted from the
        first job's arrival or ``ready_at`` (when the lane could take a batch), whichever is later.
        None once stopped; an empty list when ``patience`` (seconds) ran out first (the lane has
        batches to watch)."""
        end = None if patience is None else time.monotonic() + patience
        with self._cond:
            while not self._pending and not self._stopped:
                if end is None:
                    self._cond.wait()
                elif (left := end - time.monotonic()) > 0:
                    self._cond.wait(left)
                else:
                    return []
            if self._stopped:
                return None
            until = max(self._pending[0].queued_at, ready_at) + self.window_s
            stop_at = until if end is None else min(until, end)
            while len(self._pending) < self.batch_max and (left := stop_at - time.monotonic()) > 0:
                self._cond.wait(left)
            if len(self._pending) < self.batch_max and time.monotonic() < until:
                return []  # the window is still open, but a batch in flight needs looking at
            batch, self._pending[:] = self._pending[:self.batch_max], self._pending[self.batch_max:]
            return batch

    def _new_pipeline(self, composer: Any) -> Any:
        if self._pipeline is not None:
            return self._pipeline(composer)
        from engine.compose.pipeline import (
            Pipeline,  # the engine (and torch) only in the worker process
        )

        return Pipeline(composer)

    def pack(self, job: BatchJob, outcome: Any, size: int) -> Packed:
        """A job's outcome as its task returns it."""
        if isinstance(outcome, EngineError):
            return {"error": str(outcome)}
        if isinstance(outcome, Exception):  # a bug: one line for the user, the traceback in this worker's log
            log.error("job %s failed:\n%s", job.job_id,
                      "".join(traceback.format_exception(type(outcome), outcome, outcome.__traceback__)))
            return {"error": policy.INTERNAL_ERROR}
        got = outcome.summary.get("checkpoint_hash")
        if got and not job.checkpoint_hash.startswith(got):
            log.warning("job %s: its checkpoint changed since the job was accepted", job.job_id)
        try:
            return pack_result(outcome, {**self.info, "started_at": job.started, "finished_at": time.time(),
                                         "batch": size})
        except ValueError as exc:  # the files are over the cap
            return {"error": str(exc)}


class _Lane:
    """One lane's thread: takes batches, hands them to its pipeline, watches their time limits."""

    def __init__(self, batcher: Batcher) -> None:
        self.b = batcher
        self.flights: list[_Flight] = []
        self.pipeline: Any = None
        self._changed = threading.Event()  # set by the pipeline's callbacks
        # when the lane last became free to take a batch: a Celery slot frees only as a clip is
        # stored, so the tasks that will fill the next batch may arrive just after that
        self._ready_at = 0.0
        self._held = False

    def run(self) -> None:
        try:
            while True:
                self._changed.clear()
                self._police()
                if self.flights and (len(self.flights) >= IN_FLIGHT or not self.flights[-1].sampled):
                    self._held = True
                    self._changed.wait(self._patience())
                    continue
                if self._held:
                    self._held, self._ready_at = False, time.monotonic()
                batch = self.b._take(self._patience() if self.flights else None, self._ready_at)
                if batch is None:
                    if not self.flights:
                        return
                    self._changed.wait(self._patience())  # stopped: let the batches in flight finish
                elif batch:
                    self._start(batch)
        finally:  # nothing waits forever, whatever happened
            for flight in self.flights:
                for job in flight.jobs:
                    job.finish({"error": policy.INTERNAL_ERROR})
            if self.pipeline is not None:
                self.pipeline.close(wait=False)

    def _patience(self) -> float:
        """Seconds until the next time limit of a batch in flight (at most `POLL_S`)."""
        soonest = min((f.next_limit() for f in self.flights), default=time.monotonic() + POLL_S)
        return min(POLL_S, max(0.0, soonest - time.monotonic()))

    def _start(self, batch: list[BatchJob]) -> None:
        ids = [j.job_id for j in batch]
        log.info("composing a batch of %d: %s", len(batch), ", ".join(ids))
        if self.pipeline is None:
            try:  # outside the time limit: the first job imports torch
                self.pipeline = self.b._new_pipeline(self.b._composer())
            except Exception:
                log.error("jobs %s: no composer:\n%s", ids, traceback.format_exc())
                for job in batch:
                    job.finish({"error": policy.INTERNAL_ERROR})
                return
        soft, hard = self.b._limits(len(batch))
        now = time.monotonic()
        flight = _Flight(batch, now + soft, now + hard)

        def deliver(index: int, outcome: Any) -> None:
            job = batch[index]
            if not job.outcome.done():  # not past the time limit
                job.finish(self.b.pack(job, outcome, len(batch)))
            flight.delivered += 1
            self._changed.set()

        def sampled() -> None:
            flight.sampled = True
            self._changed.set()

        self.flights.append(flight)
        self.pipeline.submit([(j.request, j.checkpoint, j.report) for j in batch], deliver, sampled=sampled,
                             stop=flight.stop, stops=[j.stop for j in batch])

    def _police(self) -> None:
        """Drop the finished batches; apply the time limits of the others."""
        now = time.monotonic()
        kept = []
        for flight in self.flights:
            if flight.done:
                continue
            for job in flight.jobs:  # revoked while in flight: that job stops, the others go on
                if not job.stop.is_set() and not job.outcome.done() and self.b._revoked(job.job_id):
                    log.info("job %s was revoked; stopping it", job.job_id)
                    job.stop.set()
            if not flight.timed_out and now >= flight.soft_at:
                self._soft_limit(flight)
            elif flight.timed_out and now >= flight.hard_at:
                unfinished = flight.jobs[flight.delivered:]  # delivered in order
                log.error("jobs %s passed the hard time limit of a batch of %d", [j.job_id for j in unfinished],
                          len(flight.jobs))
                self.b._on_hard(unfinished)  # ends the process; if it returns, the batch is let go
                continue
            kept.append(flight)
        self.flights = kept

    def _soft_limit(self, flight: _Flight) -> None:
        flight.timed_out = True
        flight.sampled = True  # the lane may take the next batch (this one's sampling stops)
        left = [j for j in flight.jobs if not j.outcome.done()]
        log.warning("jobs %s passed the time limit of a batch of %d", [j.job_id for j in left], len(flight.jobs))
        for job in left:
            job.finish({"error": policy.timeout_message(self.b._soft_s)})
        flight.stop.set()  # after the timeouts: a job the pipeline gives up is never told "stopped"
