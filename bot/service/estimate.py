"""Honest waits: how long the queue is, from what the workers have measurably done.

`WaitEstimator` keeps, per queue backend (``local``, ``celery``), two moving averages over the
last finished jobs, measured only from what the service sees (jobs accepted, started and
finished), so no queue backend reports anything for them:

- ``per_job``, the *worker-seconds per finished job*: between two changes in the number of open
  jobs (accepted, not yet finished) it adds ``min(open, workers) * elapsed`` to the work done, and
  each finished job closes one sample. That is the throughput of the live workers while they are
  busy, whatever the backend, batching or number of machines.
- ``latency``, the *seconds one job takes once a worker starts it*: from its start (the worker's
  ``composing``, or its acceptance when a worker was free for it at once) to its finish.

Both are needed because of batching: a local worker samples up to ``CHORUS_BATCH_MAX`` jobs
together, so four jobs finishing after 2 s count 0.5 worker-seconds each, yet none of them came
sooner than 2 s after it started. The wait for the ``n``-th open job (it included) is::

    ahead = floor((n - 1) / workers) * per_job   # until a worker is free for it: the jobs ahead, at the throughput
    wait  = ahead + max(latency, per_job)        # then its own time, never less than one job's latency

Without batching ``latency == per_job`` and this is ``ceil(n / workers) * per_job``; with it, a
lone job waits one latency, a long queue goes at the throughput, and the estimate errs long by
at most one latency (when the jobs ahead share its batch). Until a job has been timed, ``prior_s``
(a setting) stands in for both, and the estimate says it is a guess; a backend with a measured
throughput but no latency yet (restored from an older run) takes ``latency = per_job``.

A sample is capped at the job timeout ``max_job_s`` (``workers * max_job_s`` for worker-seconds):
no worker spends longer on one job, so time when nothing could finish (Celery's Redis away, jobs
held by the bot) skews an average by one capped sample at most.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

WINDOW = 12  # finished jobs averaged: a few batches' worth, so a batch finishing at once does not swing it


@dataclass(frozen=True)
class Estimate:
    """How long ``jobs`` open jobs will take to finish, in seconds, and whether it was measured."""

    seconds: float
    measured: bool

    def text(self) -> str:
        """``about 8 s`` (measured) or ``about 30 s at a guess`` (the prior)."""
        return f"about {friendly(self.seconds)}" + ("" if self.measured else " at a guess")

    def too_long(self, max_wait_s: float) -> bool:
        """Past ``max_wait_s`` (0 = no limit)."""
        return max_wait_s > 0 and self.seconds > max_wait_s

    def refusal(self) -> str:
        """The one line a refused user reads."""
        return f"the queue is about {friendly(self.seconds)} long right now; try again later"


def friendly(seconds: float) -> str:
    """``seconds`` rounded for people: ``4 s``, ``25 s`` (5 s steps), ``6 min``, ``3 h``."""
    s = max(0.0, float(seconds))
    if s < 9.5:
        return f"{max(1, _round(s))} s"
    if s < 57.5:
        return f"{5 * _round(s / 5)} s"
    if s < 119.5 * 60:
        return f"{max(1, _round(s / 60))} min"
    return f"{_round(s / 3600)} h"


def _round(x: float) -> int:
    """Half up (Python's ``round`` goes half to even: 2.5 -> 2)."""
    return int(math.floor(x + 0.5))


@dataclass
class _Meter:
    """One backend's measurements."""

    samples: deque[float]  # worker-seconds per finished job, the last `WINDOW`
    latencies: deque[float]  # seconds from a job's start to its finish, the last `WINDOW`
    open: int = 0  # open jobs since `at`
    at: float | None = None  # when `open` was last observed (monotonic seconds)
    work: float = 0.0  # worker-seconds since the last finished job
    starts: dict[str, float] = field(default_factory=dict)  # job id -> when a worker started it (monotonic s)


def _mean(values: deque[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _usable(seconds: float | None) -> bool:
    return seconds is not None and math.isfinite(seconds) and seconds >= 0


@dataclass
class WaitEstimator:
    """Moving averages of worker-seconds per finished job and of one job's latency, per backend
    (see the module docstring for both and for the estimate made of them).

    Args:
        prior_s: seconds one worker is taken to need per job until a job has been timed.
        workers: workers serving the queue (jobs that can run at once, batches aside).
        max_job_s: the longest a worker may spend on one job (the job timeout); caps a sample.
        window: finished jobs averaged.
    """

    prior_s: float
    workers: int = 1
    max_job_s: float = float("inf")
    window: int = WINDOW
    _meters: dict[str, _Meter] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.prior_s <= 0 or self.workers < 1 or self.window < 1 or self.max_job_s <= 0:
            raise ValueError(f"bad estimator settings: prior_s={self.prior_s}, workers={self.workers},"
                             f" max_job_s={self.max_job_s}, window={self.window}")

    def _meter(self, backend: str) -> _Meter:
        return self._meters.setdefault(backend, _Meter(deque(maxlen=self.window), deque(maxlen=self.window)))

    def start(self, backend: str, job: str, now: float) -> None:
        """A worker started ``job`` at ``now`` (its first start, or again after a retry: the clock restarts)."""
        self._meter(backend).starts[job] = now

    def observe(self, backend: str, now: float, open_jobs: int, finished: bool = False, job: str | None = None) -> None:
        """The number of open jobs is ``open_jobs`` at ``now`` (after a job was accepted, finished or
        dropped); ``finished`` when a worker just finished one (done or failed), which closes a sample.
        ``job``: the one that finished or was dropped; its start is forgotten, and when it finished
        after a known start, its latency is a sample. The first observation only starts the clock."""
        m = self._meter(backend)
        started = m.at is not None
        if started and now > m.at:
            m.work += min(m.open, self.workers) * (now - m.at)
        m.at, m.open = now, max(0, open_jobs)
        if finished and started:
            m.samples.append(min(m.work, self.workers * self.max_job_s))
            m.work = 0.0
        began = m.starts.pop(job, None) if job is not None else None
        if finished and began is not None:
            m.latencies.append(min(max(0.0, now - began), self.max_job_s))

    def restore(self, backend: str, seconds_per_job: float | None, latency_s: float | None = None) -> None:
        """Start from an earlier run's averages (one sample each), where it has none of its own yet;
        a missing, non-finite or negative figure is ignored."""
        m = self._meter(backend)
        if not m.samples and _usable(seconds_per_job):
            m.samples.append(seconds_per_job)
        if not m.latencies and _usable(latency_s):
            m.latencies.append(latency_s)

    def seconds_per_job(self, backend: str) -> float | None:
        """The measured worker-seconds per job, or None before any job was timed."""
        m = self._meters.get(backend)
        return None if m is None else _mean(m.samples)

    def latency(self, backend: str) -> float | None:
        """The measured seconds from a job's start to its finish, or None before any was timed."""
        m = self._meters.get(backend)
        return None if m is None else _mean(m.latencies)

    def estimate(self, backend: str, jobs: int) -> Estimate:
        """How long until the ``jobs``-th open job is finished (it included): the jobs ahead of it
        at the measured throughput, then at least one job's latency (the module docstring)."""
        measured = self.seconds_per_job(backend)
        per_job = self.prior_s if measured is None else measured
        latency = self.latency(backend) if measured is not None else None
        own = per_job if latency is None else max(latency, per_job)
        return Estimate((max(1, jobs) - 1) // self.workers * per_job + own, measured is not None)
