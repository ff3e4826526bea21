"""The compose service: limits, job bookkeeping and delivery, independent of Discord's API shapes.

Cogs call `ComposeService.submit`; the queue reports progress through `handle_event`; a
`Deliverer` (Discord-specific, in `bot.ui.delivery`) shows progress and posts results. Every accepted
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

from bot.errors import CatalogError, ServiceError
from bot.queues import policy
from bot.queues.base import JobEvent, JobQueue, WorkItem, out_dir_for
from bot.queues.policy import Outcome, Posting
from bot.service.admin import CANCELLED_BY_ADMIN, AdminOps
from bot.service.estimate import Estimate, WaitEstimator
from bot.service.seeds import SeedReader
from bot.service.sheet import SheetMaker
from bot.service.waiting import WaitingBoard
from bot.settings import BotSettings
from bot.store import retention
from bot.store.catalog import Catalog
from bot.store.db import FINISHED_STATUSES, Job, Store
from bot.store.results import ResultError, check_result
from engine.compose.request import ComposeRequest, RequestError
from engine.formats.seed import SeedLimits

log = logging.getLogger(__name__)


class Deliverer(Protocol):
    """Shows progress and posts results; `bot.ui.delivery.DiscordDeliverer` is the one for Discord."""

    async def progress(self, job: Job, stage: str) -> None: ...
    async def queued(self, job: Job, position: int, wait: Estimate) -> None: ...
    async def deliver(self, job: Job, posting: Posting) -> Outcome: ...
    async def notify_failure(self, job: Job, reason: str, posting: Posting) -> Outcome: ...


@dataclass
class Submission:
    """A request as the cog built it (validated once, by `ComposeService.request`) and who asked."""

    request: ComposeRequest
    user_id: int
    guild_id: int | None = None
    channel_id: int | None = None
    application_id: int | None = None
    interaction_token: str | None = None
    checkpoint: str | None = None  # a checkpoint by name (a clip's Continue), else the style's active one


CANCELLED_BY_OWNER = "cancelled by its owner"


class ComposeService(AdminOps):
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
        # measured per backend (settings.queue); no job outlasts its timeout, so no sample does
        self.waits = WaitEstimator(settings.wait_prior_s, settings.workers, max_job_s=settings.job_timeout_s)
        # started and closed by the bot (bot.ui.app), as the queue is
        self.seeds = SeedReader(SeedLimits(max_bytes=settings.max_seed_bytes), workers=settings.seed_workers,
                                max_in_flight=settings.max_queue, per_user=settings.user_max_pending)
        self.board = WaitingBoard(store, self.waits, settings.queue)  # waiting jobs' places, kept shown
        self.sheets = SheetMaker(queue, data_dir, settings.job_timeout_s)  # the Sheet button's lead sheets

    async def load_state(self) -> None:
        await asyncio.to_thread(self.catalog.clear_staging)  # an install a crash interrupted
        self.catalog.active = await self.store.active_checkpoints()
        self.paused = (await self.store.flag("paused", "0")) == "1"
        # an earlier run's measurements, so the first estimates after a restart are not guesses
        self.waits.restore(self.settings.queue, await self._stored(self._wait_flag),
                           await self._stored(self._latency_flag))

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
        """Refuse politely when paused, the queue is full or its estimated wait too long (`bot.service.estimate`),
        or the user is over their limits."""
        if self.paused:
            raise ServiceError("Chorus is paused by the admins; try again later")
        open_jobs = await self.store.count(("queued", "running"))
        if open_jobs >= self.settings.max_queue:
            raise ServiceError("the queue is full, try again in a minute")
        if (wait := self.waits.estimate(self.settings.queue, open_jobs + 1)).too_long(self.settings.max_wait_s):
            raise ServiceError(wait.refusal())
        pending = await self.store.count(("queued", "running"), user_id)
        if pending >= self.settings.user_max_pending:
            what, which = ("a request", "it") if pending == 1 else (f"{pending} requests", "one")
            raise ServiceError(f"you already have {what} in the queue; wait for {which} to finish")
        last = await self.store.last_job_time(user_id)
        if last is not None:
            wait = self.settings.user_cooldown_s - (time.time() - last)
            if wait > 0:
                raise ServiceError(f"slow down: you can compose again in {wait:.0f} s")

    async def submit(self, sub: Submission) -> tuple[Job, int]:
        """Validate, check limits, persist and enqueue. Returns the job and its place among the jobs
        not yet started (1: next up)."""
        req = sub.request
        try:
            ck = self.catalog.resolve(req.style)
        except CatalogError as exc:
            raise RequestError(str(exc)) from exc
        if sub.checkpoint is not None and sub.checkpoint != ck.name:
            ck = self.catalog.get(sub.checkpoint)
            if ck is None:
                raise RequestError(f"the checkpoint {sub.checkpoint} is no longer installed")
        async with self._admit:
            await self.check_limits(sub.user_id)
            job = self._job(sub, req, ck)
            await self.store.add_job(job)
            await self._observe(job.id, accepted=True)
            # its place among the jobs not yet started, as `bot.service.waiting` counts it while it waits
            position = await self.store.count(("queued",))
        await self.queue.submit(self._item(job, req))  # the request as validated, not parsed back
        return job, position

    async def wait(self) -> Estimate:
        """How long until every open job is finished (the newest one's wait), from measured throughput."""
        return self.waits.estimate(self.settings.queue, await self.store.count(("queued", "running")))

    @property
    def _wait_flag(self) -> str:
        return f"seconds_per_job:{self.settings.queue}"

    @property
    def _latency_flag(self) -> str:
        return f"job_latency:{self.settings.queue}"

    async def _stored(self, flag: str) -> float | None:
        """A stored figure, or None when there is none or it is unreadable."""
        try:
            return float(await self.store.flag(flag, ""))
        except ValueError:
            return None

    async def _observe(self, job_id: str | None = None, *, accepted: bool = False, finished: bool = False) -> None:
        """Tell the estimator how many jobs are open now, and about ``job_id``: just ``accepted`` (with
        a worker free for it, its clock starts now; its worker's ``composing`` restarts it), or
        ``finished`` by a worker (its latency is a sample), or dropped. The averages are kept across
        restarts. Never raises: an estimate is never worth a job."""
        backend = self.settings.queue
        try:
            now, open_jobs = time.monotonic(), await self.store.count(("queued", "running"))
            if accepted and job_id is not None and open_jobs <= self.waits.workers:
                self.waits.start(backend, job_id, now)
            self.waits.observe(backend, now, open_jobs, finished, job=None if accepted else job_id)
            if finished and (per_job := self.waits.seconds_per_job(backend)) is not None:
                await self.store.set_flag(self._wait_flag, f"{per_job:.3f}")
            if finished and (latency := self.waits.latency(backend)) is not None:
                await self.store.set_flag(self._latency_flag, f"{latency:.3f}")
        except Exception:  # the job itself is recorded already; only the estimate misses a step
            log.exception("the wait estimate could not be updated")

    async def submit_with_seed(self, sub: Submission, url: str) -> tuple[Job, int]:
        """`submit` with the seed MIDI file at ``url``: the limits are checked before the download
        (a refused user costs no download), and again by `submit`, atomically with writing the job.

        Raises:
            ServiceError: paused, the queue is full, or the user is over their limits.
            SeedUploadError: the upload is too large or could not be downloaded.
            engine.formats.seed.SeedMidiError: the file was refused, with the reason.
        """
        await self.check_limits(sub.user_id)
        data = await self.seeds.read(url, sub.user_id)
        return await self.submit(dataclasses.replace(sub, request=dataclasses.replace(sub.request, seed_midi=data)))

    async def cancel(self, job_id: str, user_id: int, guild_id: int | None = None) -> Job:
        """Cancel a queued job for its owner; the caller updates the status message.

        Raises:
            ServiceError: not known in this guild (``guild_id``, where the button was pressed), not
                the owner's, or no longer queued; one line.
        """
        async with self._admit, self.board.editing(job_id):  # no "queued" edit lands after the caller's
            job = await self.store.get_job(job_id)
            if job is None or (guild_id is not None and job.guild_id != guild_id):
                raise ServiceError("that request is not known here")
            if job.user_id != user_id:
                raise ServiceError("only the person who asked for this clip can cancel it")
            if job.status != "queued":
                if job.error in (CANCELLED_BY_OWNER, CANCELLED_BY_ADMIN):
                    raise ServiceError("that request is already cancelled")
                state = "being composed" if job.status == "running" else "finished"
                raise ServiceError(f"that request is already {state}; it can no longer be cancelled")
            await self.queue.cancel(job_id)
            await self.store.update_job(job_id, status="failed", error=CANCELLED_BY_OWNER, next_try_at=None, notice_sent=1)
            self.board.forget(job_id)
            await self._observe(job_id)
        log.info("job %s cancelled by its owner", job_id)
        return job

    def _job(self, sub: Submission, req: ComposeRequest, ck) -> Job:
        return Job(id=Job.new_id(), user_id=sub.user_id, guild_id=sub.guild_id, channel_id=sub.channel_id,
                   request=req.to_payload(), style=req.style, checkpoint=ck.name, checkpoint_hash=ck.content_hash,
                   application_id=sub.application_id, interaction_token=sub.interaction_token)

    def _item(self, job: Job, req: ComposeRequest | None = None) -> WorkItem:
        """The job as a worker takes it. ``req``: the request as this process validated it; a job
        read back from the database (recovery) parses its stored request instead.

        Raises:
            RequestError: a stored request this version cannot read.
        """
        return WorkItem(job.id, req if req is not None else job.compose_request(), job.checkpoint, job.checkpoint_hash,
                        str(out_dir_for(self.data_dir, job.id)), job.attempts)

    async def set_status_message(self, job_id: str, message_id: int, position: int | None = None,
                                 wait: Estimate | None = None) -> None:
        """Record a job's status message; with the ``position`` and ``wait`` it shows, they are kept
        up to date while the job waits (`bot.service.waiting`)."""
        await self.store.update_job(job_id, status_message_id=message_id)
        if position is not None and wait is not None:
            self.board.shown(job_id, position, wait)

    async def handle_event(self, event: JobEvent) -> None:
        """A queue's report on one job (or, ``warm``, a starting worker's clip timing); whatever goes
        wrong stays with that job."""
        if self.sheets.claims(event):  # a lead sheet's job, not a clip's
            return
        if event.kind == "warm":  # where nothing was measured yet, the estimate starts from this machine's clip
            seconds = (event.result or {}).get("seconds")
            if self.waits.seconds_per_job(self.settings.queue) is None:
                self.waits.restore(self.settings.queue, seconds, seconds)
                log.info("wait estimate: %.2f s a job, from a worker's warm clip", seconds)
            return
        try:
            await self._on_event(event)
        except Exception as exc:  # one bad job must not stop the others
            log.exception("job %s: handling its %s event failed", event.job_id, event.kind)
            await self._fail(event.job_id, f"an internal error stopped this request ({type(exc).__name__})")

    async def _on_event(self, event: JobEvent) -> None:
        job = await self.store.get_job(event.job_id)
        if job is None or job.status in FINISHED_STATUSES:
            return
        if event.kind == "progress":
            if (job.status == "queued" and event.stage == "composing") or event.stage == "retrying":
                job.attempts = await self.store.bump_attempts(job.id)  # a start, counted across restarts
                job.status = "running"
                self.waits.start(self.settings.queue, job.id, time.monotonic())  # its latency runs from here
            if event.stage == "resumed":  # "queued again": its place is shown again at the next refresh
                self.board.shown(job.id)
            else:
                self.board.forget(job.id)
            if self.deliverer:
                async with self.board.editing(job.id):
                    await self.deliverer.progress(job, event.stage)
        elif event.kind == "done":
            try:
                result = check_result(event.result)
            except ResultError as exc:
                log.error("job %s returned a result this bot cannot use: %s", job.id, exc)
                await self._fail(job.id, "the finished clip came back damaged")
                return
            await self.store.update_job(job.id, status="done", result=result, next_try_at=None)
            job.result, job.status = result, "done"
            await self._observe(job.id, finished=True)
            await self._try_delivery(job)
        elif event.kind == "failed":
            await self._fail(job.id, event.error or policy.INTERNAL_ERROR, finished=True)

    async def _fail(self, job_id: str, reason: str, finished: bool = False) -> None:
        """Mark a job failed and tell its user once (retried later if Discord is away); ``finished``
        when a worker ended it (its time counts toward the wait estimate)."""
        job = await self.store.get_job(job_id)
        if job is None or job.status in FINISHED_STATUSES:
            return
        was_open = job.status in ("queued", "running")
        await self.store.update_job(job_id, status="failed", error=reason, next_try_at=None, posted_at=None,
                                    delivery_attempts=0)
        if was_open:
            await self._observe(job_id, finished=finished)
        job.status, job.error, job.posted_at, job.delivery_attempts = "failed", reason, None, 0
        await self._try_delivery(job)

    async def _try_delivery(self, job: Job) -> None:
        """One try at the job's clip (done) or failure notice (failed), with backoff when it does not get through."""
        if self.deliverer is None:
            return

        async def posting() -> None:
            if job.posted_at is None:
                job.posted_at = time.time()
                await self.store.update_job(job.id, posted_at=job.posted_at)

        if job.status == "done":
            try:
                check_result(job.result)  # a stored result may come from an older or foreign worker
            except ResultError as exc:
                log.error("job %s has a result that cannot be shown: %s", job.id, exc)
                await self._fail(job.id, "the finished clip came back damaged")
                return
            self.board.forget(job.id)
            async with self.board.editing(job.id):
                outcome = await self.deliverer.deliver(job, posting)
            if outcome.sent:
                await self.store.update_job(job.id, status="delivered", delivered_at=time.time(),
                                            message_id=outcome.message_id, next_try_at=None)
                return
            if not outcome.retry:
                await self._fail(job.id, outcome.reason or "the clip could not be posted")
                return
        else:
            self.board.forget(job.id)
            async with self.board.editing(job.id):
                outcome = await self.deliverer.notify_failure(job, job.error or policy.INTERNAL_ERROR, posting)
            if outcome.sent or not outcome.retry:
                if not outcome.sent:
                    log.warning("job %s: its failure notice could not be sent: %s", job.id, outcome.reason)
                await self.store.update_job(job.id, notice_sent=1, message_id=outcome.message_id, next_try_at=None)
                return
        await self._later(job)

    async def _later(self, job: Job) -> None:
        tries = job.delivery_attempts + 1
        if tries >= policy.MAX_DELIVERY_TRIES:
            log.error("job %s: giving up after %d tries to reach its user", job.id, tries)
            if job.status == "done":
                await self.store.update_job(job.id, status="failed", error="the clip could not be delivered",
                                            notice_sent=1, delivery_attempts=tries, next_try_at=None)
            else:
                await self.store.update_job(job.id, notice_sent=1, delivery_attempts=tries, next_try_at=None)
            return
        wait = policy.delivery_backoff(tries, self.settings.delivery_retry_s)
        await self.store.update_job(job.id, delivery_attempts=tries, next_try_at=time.time() + wait)
        log.info("job %s: will try to reach its user again in %.0f s", job.id, wait)

    async def deliver_due(self, now: float | None = None) -> int:
        """Try every undelivered clip and unsent notice due by ``now`` (default: the time now).

        Returns:
            How many were tried.
        """
        jobs = await self.store.due(time.time() if now is None else now)
        for job in jobs:
            try:
                await self._try_delivery(job)
            except Exception:  # one bad job must not stop the others
                log.exception("job %s: delivery failed", job.id)
                await self.store.update_job(job.id, next_try_at=time.time() + self.settings.delivery_retry_s)
        return len(jobs)

    async def recover(self) -> dict[str, int]:
        """After a restart: re-queue unfinished jobs and deliver finished ones, each on its own.

        Returns:
            Counts of jobs requeued, failed (their starts used up, or unreadable) and finished ones tried.
        """
        counts = {"requeued": 0, "failed": 0}
        for job in await self.store.jobs(("queued", "running")):
            try:
                counts[await self._recover(job)] += 1
            except Exception:  # one bad job must not stop the bot from starting
                log.exception("job %s could not be recovered", job.id)
                await self._fail(job.id, "this request could not be run again")
                counts["failed"] += 1
        await self._observe()  # the clock starts with the jobs left open
        counts["finished"] = await self.deliver_due(now=float("inf"))  # clips and notices, whatever their backoff said
        if any(counts.values()):
            log.info("recovered: %s", counts)
        return counts

    async def housekeeping(self) -> None:
        """While the bot runs: retry deliveries and notices as they fall due, keep waiting jobs' places
        and waits up to date, and prune old files."""
        last_prune = 0.0
        while True:
            try:
                await self.deliver_due()
                if self.deliverer is not None:
                    await self.board.refresh(self.deliverer)
                if time.monotonic() - last_prune >= self.settings.prune_interval_s:
                    last_prune = time.monotonic()
                    await retention.prune(self.store, self.data_dir, self.settings)
            except Exception:  # housekeeping must go on
                log.exception("housekeeping round failed")
            await asyncio.sleep(min(self.settings.delivery_retry_s, self.settings.prune_interval_s, 5.0))

    async def _recover(self, job: Job) -> str:
        """Re-queue one unfinished job, unless its starts are used up (it may be what crashed the bot)."""
        try:
            item = self._item(job)
        except RequestError as exc:  # a stored request this version cannot read
            log.error("job %s cannot be run again: %s", job.id, exc)
            await self._fail(job.id, "this request could not be run again")
            return "failed"
        if job.status == "running" and not policy.may_start(job.attempts + 1):
            await self._fail(job.id, policy.CRASHED_TWICE)
            return "failed"
        await self.store.update_job(job.id, status="queued")
        await self.queue.submit(item)
        if job.status_message_id is not None:  # its message shows its place again at the next refresh
            self.board.shown(job.id)
        return "requeued"
