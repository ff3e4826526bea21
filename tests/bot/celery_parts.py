"""Helpers for the tests of the Celery queue (`bot.queues.celery.queue`) against real parts: the bot's
settings, work items, a `Recorder` of the queue's events, a running queue, the broker's view."""
from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import redis

from bot.queues.base import JobEvent, WorkItem
from bot.queues.celery.queue import CeleryQueue
from bot.settings import BotSettings, Secret
from engine.models.checkpoint import read_meta
from tests.helpers import work_item

JOB_TIMEOUT_S = 6  # the default for the bot's settings below


def content_hash(ck: Path) -> str:
    return str(read_meta(ck)["content_hash"])


def bot_settings(tmp: Path, url: str, checkpoints: dict[str, Path], job_timeout_s: float = JOB_TIMEOUT_S) -> BotSettings:
    root = tmp / "bot-checkpoints"
    root.mkdir(exist_ok=True)
    for name, path in checkpoints.items():
        link = root / name
        if link.is_symlink():
            link.unlink()
        link.symlink_to(path)
    return BotSettings(redis_url=Secret(url), checkpoints_dir=root, data_dir=tmp / "bot-data",
                       job_timeout_s=job_timeout_s)


def item(tmp: Path, job_id: str, ck_hash: str, seconds: float = 6, checkpoint: str = "jazz", **req: object) -> WorkItem:
    return work_item(tmp / "bot-data", job_id, seconds, checkpoint, ck_hash, **req)


class Recorder:
    """Collects a queue's events; `wait` returns once every job named has finished."""

    def __init__(self, queue: CeleryQueue) -> None:
        self.events: list[JobEvent] = []
        self.changed = asyncio.Event()
        queue.on_event = self.on_event

    async def on_event(self, e: JobEvent) -> None:
        self.events.append(e)
        self.changed.set()

    def of(self, job_id: str) -> list[JobEvent]:
        return [e for e in self.events if e.job_id == job_id]

    def finished(self, job_id: str) -> list[JobEvent]:
        return [e for e in self.of(job_id) if e.kind in ("done", "failed")]

    def stages(self, job_id: str) -> list[str]:
        return [e.stage for e in self.of(job_id) if e.kind == "progress"]

    async def wait(self, *job_ids: str, timeout: float = 120.0, linger: float = 1.0) -> None:
        async def all_done() -> None:
            while not all(self.finished(j) for j in job_ids):
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(all_done(), timeout)
        await asyncio.sleep(linger)  # a duplicate completion would show up here


def run(coro) -> None:
    asyncio.run(coro)


@contextlib.asynccontextmanager
async def running(settings: BotSettings) -> AsyncIterator[tuple[CeleryQueue, Recorder]]:
    """A started `CeleryQueue` with a `Recorder` on its events; stopped on the way out."""
    q = CeleryQueue(settings)
    rec = Recorder(q)
    await q.start()
    try:
        yield q, rec
    finally:
        await q.stop()


def task_meta(q: CeleryQueue, job_id: str) -> dict:
    """The task's state as the result backend holds it now ({} before the first)."""
    raw = q.redis.get(q._task_key(job_id))
    return json.loads(raw) if raw else {}


def unacked_ids(client: redis.Redis) -> set[str]:
    """Ids of the tasks whose messages a worker holds without having acknowledged them (kombu's
    Redis transport keeps them in the ``unacked`` hash until the ack, restoring them to the queue
    when the visibility timeout passes)."""
    return {json.loads(raw)[0]["headers"]["id"] for raw in client.hvals("unacked")}
