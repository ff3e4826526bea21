"""A waiting job's status message keeps its place in the queue and its wait up to date.

``⏳ Queued your jazz clip (position 3 in the queue, about 8 s).`` is true when it is posted and
goes stale as the queue moves. `WaitingBoard` remembers what each waiting job's message shows and,
each housekeeping round, edits those whose place or estimate (`bot.service.estimate`) has changed: the
first `REFRESH_MAX` in line, each only when its text would change, so one step of the queue costs
at most that many edits (Discord allows about 50 requests a second to a bot, and each
interaction's webhook has its own bucket).

Every edit of a job's status message (these, its progress, its clip or failure notice, its
cancelling) goes through `editing`, one at a time per job, and a "queued" edit first reads the
job again: a late one never lands over the progress, the clip or "cancelled".
"""
from __future__ import annotations

import asyncio
from typing import Protocol

from bot.service.estimate import Estimate, WaitEstimator
from bot.store.db import Job, Store

REFRESH_MAX = 25  # waiting jobs kept up to date, from the front of the queue


class Shows(Protocol):
    async def queued(self, job: Job, position: int, wait: Estimate) -> None: ...


class WaitingBoard:
    """What the waiting jobs' status messages show, and the per-job edit locks."""

    def __init__(self, store: Store, waits: WaitEstimator, backend: str) -> None:
        self.store, self.waits, self.backend = store, waits, backend
        self._shown: dict[str, tuple[int, str]] = {}  # job id -> (position, wait text) on its message
        self._locks: dict[str, asyncio.Lock] = {}

    def shown(self, job_id: str, position: int = 0, wait: Estimate | None = None) -> None:
        """The job's message shows this place and wait (none: something else, to be replaced at the
        next refresh, as after a restart or "queued again")."""
        self._shown[job_id] = (position, wait.text() if wait else "")

    def forget(self, job_id: str) -> None:
        """The job's message now shows something else for good (progress, a clip, a notice)."""
        self._shown.pop(job_id, None)

    def editing(self, job_id: str) -> asyncio.Lock:
        """Hold while editing the job's status message."""
        return self._locks.setdefault(job_id, asyncio.Lock())

    async def refresh(self, shows: Shows) -> int:
        """Edit each waiting job's message whose place or wait changed; returns the edits made."""
        for idle in [k for k, lock in self._locks.items() if not lock.locked() and k not in self._shown]:
            del self._locks[idle]
        if not self._shown:
            return 0
        queued = await self.store.jobs(("queued",))
        for gone in self._shown.keys() - {job.id for job in queued}:
            del self._shown[gone]
        ahead = await self.store.count(("running",))
        edits = 0
        for position, job in enumerate(queued[:REFRESH_MAX], start=1):
            wait = self.waits.estimate(self.backend, ahead + position)
            now = (position, wait.text())
            if self._shown.get(job.id, now) == now:
                continue  # no message of this bot's to keep, or nothing changed
            async with self.editing(job.id):
                fresh = await self.store.get_job(job.id)
                if fresh is None or fresh.status != "queued" or job.id not in self._shown:
                    continue  # it started, ended or was cancelled meanwhile: its own message says so
                await shows.queued(fresh, position, wait)
                self._shown[job.id] = now
                edits += 1
        return edits
