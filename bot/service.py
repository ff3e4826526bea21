"""The compose service: limits, job bookkeeping and delivery, independent of Discord's API shapes.

Cogs call `ComposeService.submit`; the queue reports progress through `handle_event`; a
`Deliverer` (Discord-specific, in `bot.delivery`) shows progress and posts results. Every accepted
job is in SQLite before the user hears "queued", and `recover` finishes whatever a restart left.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bot.catalog import Catalog
from bot.db import Job, Store
from bot.errors import CatalogError, ServiceError
from bot.queue import JobEvent, JobQueue, WorkItem, out_dir_for
from bot.seeds import SeedReader
from bot.settings import BotSettings
from engine.request import ComposeRequest, RequestError
from engine.seed import SeedLimits

log = logging.getLogger(__name__)


class Deliverer(Protocol):
    async def progress(self, job: Job, stage: str) -> None: ...
    async def deliver(self, job: Job) -> bool: ...
    async def fail(self, job: Job, reason: str) -> bool: ...


@dataclass
class Submission:
    """A request as the cog built it (validated once, by `ComposeService.request`) and who asked."""

    request: ComposeRequest
    user_id: int
    guild_id: int | None = None
    channel_id: int | None = None
    application_id: int | None = None
    interaction_token: str | None = None


class ComposeService:
    def __init__(self, settings: BotSettings, store: Store, queue: JobQueue, catalog: Catalog, data_dir: Path) -> None:
        self.settings = settings
        self.store = store
        self.queue = queue
        self.catalog = catalog
        self.data_dir = data_dir
        self.deliverer: Deliverer | None = None
        self.queue.on_event = self.handle_event
        self.paused = False
        self._admit = asyncio.Lock()  # limits are checked and the job written as one step
        # started and closed by the bot (bot.app), as the queue is
        self.seeds = SeedReader(SeedLimits(max_bytes=settings.max_seed_bytes), workers=settings.seed_workers,
                                max_in_flight=settings.max_queue, per_user=settings.user_max_pending)

    async def load_state(self) -> None:
        self.catalog.active = await self.store.active_checkpoints()
        self.paused = (await self.store.flag("paused", "0")) == "1"

    def styles(self) -> list[str]:
        return sorted(self.catalog.styles())

    def request(self, style: str, length: str | float, **options: Any) -> ComposeRequest:
        """The one validation of a request: `ComposeRequest.build` with the settings' limits and
        the installed styles. ``options`` are `ComposeRequest.build`'s keywords.

        Raises:
            RequestError: a bad value, named.
        """
        return ComposeRequest.build(style, length, self.settings, self.styles(), **options)

    async def check_limits(self, user_id: int) -> None:
        """Refuse politely when paused, the queue is full, or the user is over their limits."""
        if self.paused:
            raise ServiceError("Chorus is paused by the admins; try again later")
        if await self.store.count(("queued", "running")) >= self.settings.max_queue:
            raise ServiceError("the queue is full, try again in a minute")
        pending = await self.store.count(("queued", "running"), user_id)
        if pending >= self.settings.user_max_pending:
            raise ServiceError(f"you already have {pending} requests in the queue; wait for one to finish")
        last = await self.store.last_job_time(user_id)
        if last is not None:
            wait = self.settings.user_cooldown_s - (time.time() - last)
            if wait > 0:
                raise ServiceError(f"slow down: you can compose again in {wait:.0f} s")

    async def submit(self, sub: Submission) -> tuple[Job, int]:
        """Validate, check limits, persist and enqueue. Returns the job and its queue position."""
        req = sub.request
        try:
            ck = self.catalog.resolve(req.style)
        except CatalogError as exc:
            raise RequestError(str(exc)) from exc
        async with self._admit:
            await self.check_limits(sub.user_id)
            job = self._job(sub, req, ck)
            await self.store.add_job(job)
        position = await self.queue.submit(self._item(job))
        return job, position

    async def submit_with_seed(self, sub: Submission, url: str) -> tuple[Job, int]:
        """`submit` with the seed MIDI file at ``url``: the limits are checked before the download
        (a refused user costs no download), and again by `submit`, atomically with writing the job.

        Raises:
            ServiceError: paused, the queue is full, or the user is over their limits.
            SeedUploadError: the upload is too large or could not be downloaded.
            engine.seed.SeedMidiError: the file was refused, with the reason.
        """
        await self.check_limits(sub.user_id)
        data = await self.seeds.read(url, sub.user_id)
        return await self.submit(dataclasses.replace(sub, request=dataclasses.replace(sub.request, seed_midi=data)))

    def _job(self, sub: Submission, req: ComposeRequest, ck) -> Job:
        return Job(id=Job.new_id(), user_id=sub.user_id, guild_id=sub.guild_id, channel_id=sub.channel_id,
                   request=req.to_payload(), style=req.style, checkpoint=ck.name, checkpoint_hash=ck.content_hash,
                   application_id=sub.application_id, interaction_token=sub.interaction_token)

    def _item(self, job: Job) -> WorkItem:
        return WorkItem(job.id, job.compose_request(), job.checkpoint, job.checkpoint_hash,
                        str(out_dir_for(self.data_dir, job.id)), job.attempts)

    async def set_status_message(self, job_id: str, message_id: int) -> None:
        await self.store.update_job(job_id, status_message_id=message_id)

    async def handle_event(self, event: JobEvent) -> None:
        job = await self.store.get_job(event.job_id)
        if job is None or job.status in ("delivered", "failed"):
            return
        if event.kind == "progress":
            await self.store.update_job(job.id, status="running")
            if self.deliverer:
                await self.deliverer.progress(job, event.stage)
        elif event.kind == "done":
            await self.store.update_job(job.id, status="done", result=event.result)
            job.result, job.status = event.result, "done"
            await self._deliver(job)
        elif event.kind == "failed":
            await self.store.update_job(job.id, status="failed", error=event.error)
            if self.deliverer:
                await self.deliverer.fail(job, event.error)

    async def _deliver(self, job: Job) -> None:
        if self.deliverer is None:
            return
        if await self.deliverer.deliver(job):
            await self.store.update_job(job.id, status="delivered", delivered_at=time.time())

    async def recover(self) -> dict[str, int]:
        """After a restart: deliver finished jobs, re-queue the rest. Returns the counts."""
        done = requeued = 0
        for job in await self.store.jobs(("queued", "running", "done")):
            if job.status == "done" and job.result:
                await self._deliver(job)
                done += 1
            else:
                try:
                    item = self._item(job)
                except RequestError as exc:  # a stored request this version cannot read
                    log.error("job %s cannot be run again: %s", job.id, exc)
                    await self.handle_event(JobEvent(job.id, "failed", error="this request could not be run again"))
                    continue
                await self.store.update_job(job.id, status="queued")
                await self.queue.submit(item)
                requeued += 1
        if done or requeued:
            log.info("recovered %d finished and %d unfinished jobs", done, requeued)
        return {"delivered": done, "requeued": requeued}

    async def pause(self, paused: bool) -> None:
        self.paused = paused
        await self.store.set_flag("paused", "1" if paused else "0")

    async def use(self, style: str, checkpoint: str, user_id: int) -> str:
        ck = self.catalog.get(checkpoint)
        if ck is None:
            raise CatalogError(f"no checkpoint named {checkpoint!r} is installed")
        await self.store.set_active(style, checkpoint, user_id)
        self.catalog.active[style] = checkpoint
        return ck.describe()

    async def queue_summary(self) -> dict[str, Any]:
        status = await self.queue.status()
        return {"pending": status.pending, "running": status.running, "workers": status.workers,
                "accepted_open": await self.store.count(("queued", "running")), "paused": self.paused}
