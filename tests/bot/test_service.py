"""The compose service's job rules with a real SQLite store and stand-ins for the queue and Discord:
per-job isolation, delivery retried with backoff, the post marker, start counts kept across restarts, and
the wait estimate's refusals and measurements (a lone job after a batch is told the batch's time)."""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.queues import policy
from bot.queues.base import JobEvent, QueueStatus
from bot.queues.policy import Outcome
from bot.service.compose import ComposeService, Submission
from bot.settings import BotSettings
from bot.store.catalog import Catalog
from bot.store.db import Job, Store
from engine.compose.request import ComposeRequest
from engine.settings import Settings

GOOD = {"seconds": 6.0, "tempo": 120, "bars": 3, "seed": 1, "files": {"audio": "a.ogg", "midi": "a.mid"}}


class Queue:
    on_event = None

    def __init__(self) -> None:
        self.items: list = []

    async def start(self) -> None: ...
    async def stop(self) -> None: ...

    async def submit(self, item) -> int:
        self.items.append(item)
        return len(self.items)

    async def status(self) -> QueueStatus:
        return QueueStatus(len(self.items), 0, [])

    async def cancel(self, job_id: str) -> bool:
        return True


class Discord:
    """Answers each try with the next outcome given; records what was tried."""

    def __init__(self, *outcomes: Outcome) -> None:
        self.outcomes = list(outcomes)
        self.tries: list[tuple[str, str]] = []

    async def progress(self, job: Job, stage: str) -> None: ...
    async def queued(self, job: Job, position: int, wait) -> None: ...

    async def deliver(self, job: Job, posting) -> Outcome:
        self.tries.append(("clip", job.id))
        await posting()
        return self.outcomes.pop(0) if self.outcomes else Outcome(True, 1)

    async def notify_failure(self, job: Job, reason: str, posting) -> Outcome:
        self.tries.append(("notice:" + reason, job.id))
        return self.outcomes.pop(0) if self.outcomes else Outcome(True, 2)


class OneStyle:
    """A catalog serving jazz from one installed checkpoint (none on disk: the queue is a stand-in too)."""

    def resolve(self, style: str):
        return Installed("jazz", "jazz", "abc")


@dataclass
class Installed:
    name: str
    style: str
    content_hash: str


async def service(tmp: Path, deliverer: Discord) -> ComposeService:
    store = await Store.open(tmp / "c.db")
    s = ComposeService(BotSettings(delivery_retry_s=0.01), store, Queue(), Catalog(tmp, 1 << 20), tmp)
    s.deliverer = deliverer
    return s


async def add(s: ComposeService, status: str, **values) -> Job:
    req = ComposeRequest.build("jazz", "6s", Settings(), ["jazz"], seed=1)
    job = Job(Job.new_id(), 1, 1, 2, req.to_payload(), "jazz", "jazz", "abc")
    await s.store.add_job(job)
    await s.store.update_job(job.id, status=status, **values)
    return job


def test_recovery_isolates_each_job_and_counts_starts_across_restarts(tmp_path: Path) -> None:
    async def run() -> None:
        d = Discord()
        s = await service(tmp_path, d)
        bad = await add(s, "done", result={**GOOD, "seconds": "12"})
        unreadable = await add(s, "queued", request='{"v": 99}')
        twice = await add(s, "running", attempts=2)  # started twice already: it may be what crashed the bot
        once = await add(s, "running", attempts=1)
        good = await add(s, "done", result=GOOD)
        counts = await s.recover()
        assert counts == {"requeued": 1, "failed": 2, "finished": 2}
        assert [i.job_id for i in s.queue.items] == [once.id] and s.queue.items[0].attempts == 1
        status = {j: (await s.store.get_job(j)).status for j in (bad.id, unreadable.id, twice.id, good.id)}
        assert status == {bad.id: "failed", unreadable.id: "failed", twice.id: "failed", good.id: "delivered"}
        assert ("notice:" + policy.CRASHED_TWICE, twice.id) in d.tries
        # a start is counted when composing begins, and kept in the database
        await s.handle_event(JobEvent(once.id, "progress", stage="composing"))
        assert (await s.store.get_job(once.id)).attempts == 2  # its second start, after the restart
        await s.handle_event(JobEvent(once.id, "progress", stage="rendering"))
        assert (await s.store.get_job(once.id)).attempts == 2  # the same start
        await s.handle_event(JobEvent(once.id, "progress", stage="retrying"))
        assert (await s.store.get_job(once.id)).attempts == 3  # a worker died and it starts again
        await s.store.close()

    asyncio.run(run())


def test_an_undelivered_clip_is_retried_with_backoff_until_it_gets_through(tmp_path: Path) -> None:
    async def run() -> None:
        d = Discord(Outcome(False, retry=True), Outcome(False, retry=True))
        s = await service(tmp_path, d)
        job = await add(s, "running")
        await s.handle_event(JobEvent(job.id, "done", result=GOOD))
        row = await s.store.get_job(job.id)
        assert row.status == "done" and row.delivery_attempts == 1 and row.next_try_at > time.time() - 1
        assert row.posted_at is not None  # the marker was written before the (failed) post
        deadline = time.monotonic() + 10
        while (await s.store.get_job(job.id)).status != "delivered":
            assert time.monotonic() < deadline, "never delivered"
            await s.deliver_due()
            await asyncio.sleep(0.01)
        assert d.tries == [("clip", job.id)] * 3
        assert policy.delivery_backoff(1, 30) == 30 and policy.delivery_backoff(20, 30) == policy.MAX_BACKOFF_S
        await s.store.close()

    asyncio.run(run())


def test_a_refused_clip_fails_with_one_notice_and_a_bad_result_never_reaches_discord(tmp_path: Path) -> None:
    async def run() -> None:
        d = Discord(Outcome(False, reason="Discord refused the message"))
        s = await service(tmp_path, d)
        refused = await add(s, "running")
        await s.handle_event(JobEvent(refused.id, "done", result=GOOD))
        damaged = await add(s, "running")
        await s.handle_event(JobEvent(damaged.id, "done", result={"seconds": 1}))
        assert d.tries == [("clip", refused.id), ("notice:Discord refused the message", refused.id),
                           ("notice:the finished clip came back damaged", damaged.id)]
        for job in (refused, damaged):
            row = await s.store.get_job(job.id)
            assert row.status == "failed" and row.notice_sent == 1
        assert await s.deliver_due(now=float("inf")) == 0  # nothing is sent twice
        await s.store.close()

    asyncio.run(run())


def test_an_admin_cancel_drops_the_job_fails_it_and_tells_its_user_once(tmp_path: Path) -> None:
    from bot.errors import ServiceError
    from bot.service.compose import CANCELLED_BY_ADMIN as CANCELLED

    class Cancelling(Queue):
        def __init__(self) -> None:
            super().__init__()
            self.cancelled: list[str] = []

        async def cancel(self, job_id: str) -> bool:
            self.cancelled.append(job_id)
            return True

    async def run() -> None:
        d = Discord()
        s = await service(tmp_path, d)
        s.queue = Cancelling()
        job = await add(s, "running")
        await s.cancel_by_admin(job.id)
        assert s.queue.cancelled == [job.id]
        stored = await s.store.get_job(job.id)
        assert (stored.status, stored.error, stored.notice_sent) == ("failed", CANCELLED, 1)
        assert d.tries == [("notice:" + CANCELLED, job.id)]
        await s.handle_event(JobEvent(job.id, "done", result=GOOD))  # the worker finishing later changes nothing
        assert (await s.store.get_job(job.id)).status == "failed" and len(d.tries) == 1
        for bad, says in ((job.id, "failed already"), ("nope", "no job 'nope'")):
            try:
                await s.cancel_by_admin(bad)
            except ServiceError as exc:
                assert says in str(exc)
            else:
                raise AssertionError(f"cancel({bad!r}) was accepted")
        await s.store.close()

    asyncio.run(run())


def test_a_request_whose_wait_passes_the_limit_is_refused_with_the_estimate(tmp_path: Path) -> None:
    from bot.errors import ServiceError

    async def run() -> None:
        store = await Store.open(tmp_path / "c.db")
        settings = BotSettings(max_wait_s=25.0, wait_prior_s=10.0, user_cooldown_s=0)
        s = ComposeService(settings, store, Queue(), Catalog(tmp_path, 1 << 20), tmp_path)
        await add(s, "running")
        await s.check_limits(user_id=7)  # one open job: a new one would wait about 20 s, at a guess
        assert (await s.wait()).text() == "about 10 s at a guess"
        await add(s, "queued")
        try:
            await s.check_limits(user_id=7)
        except ServiceError as exc:
            assert str(exc) == "the queue is about 30 s long right now; try again later"
        else:
            raise AssertionError("a 30 s wait was accepted with a 25 s limit")
        await store.close()

    asyncio.run(run())


def test_the_measured_time_per_job_outlives_a_restart(tmp_path: Path) -> None:
    async def run() -> None:
        s = await service(tmp_path, Discord())
        job = await add(s, "queued")
        await s.recover()  # the clock starts with the job left open
        assert not (await s.wait()).measured
        await s.handle_event(JobEvent(job.id, "progress", stage="composing"))
        await s.handle_event(JobEvent(job.id, "done", result=GOOD))
        measured = s.waits.seconds_per_job("local")
        assert measured is not None and (await s.wait()).measured
        await s.store.close()

        again = await service(tmp_path, Discord())
        await again.load_state()
        assert again.waits.seconds_per_job("local") == pytest.approx(measured, abs=0.001)
        assert again.waits.seconds_per_job("celery") is None  # each backend has its own
        await again.store.close()

    asyncio.run(run())


def test_a_lone_job_after_a_batch_is_told_the_batchs_time_not_its_share(tmp_path: Path) -> None:
    async def run() -> None:
        store = await Store.open(tmp_path / "c.db")
        s = ComposeService(BotSettings(user_cooldown_s=0, delivery_retry_s=0.01), store, Queue(), OneStyle(), tmp_path)
        s.deliverer = Discord()
        await s.recover()  # the clock starts with an empty queue
        req = ComposeRequest.build("jazz", "6s", Settings(), ["jazz"], seed=1)
        jobs = [(await s.submit(Submission(req, user_id=user)))[0] for user in (1, 2, 3, 4)]
        for job in jobs:  # one worker takes all four as one sampling batch
            await s.handle_event(JobEvent(job.id, "progress", stage="composing"))
        await asyncio.sleep(0.3)
        for job in jobs:
            await s.handle_event(JobEvent(job.id, "done", result=GOOD))
        latency, per_job = s.waits.latency("local"), s.waits.seconds_per_job("local")
        assert latency is not None and per_job is not None
        assert latency >= 0.3 and per_job < latency / 2  # the batch's throughput is no lone job's wait
        wait = await s.wait()  # the next request would be alone in the queue
        assert wait.measured and wait.seconds == pytest.approx(latency)
        await store.close()

        again = await service(tmp_path, Discord())
        await again.load_state()
        assert again.waits.latency("local") == pytest.approx(latency, abs=0.001)  # kept across a restart
        assert again.waits.latency("celery") is None
        await again.store.close()

    asyncio.run(run())


def test_a_job_accepted_with_a_worker_free_is_timed_from_its_acceptance(tmp_path: Path) -> None:
    async def run() -> None:
        store = await Store.open(tmp_path / "c.db")
        s = ComposeService(BotSettings(user_cooldown_s=0, delivery_retry_s=0.01), store, Queue(), OneStyle(), tmp_path)
        s.deliverer = Discord()
        await s.recover()
        req = ComposeRequest.build("jazz", "6s", Settings(), ["jazz"], seed=1)
        alone, _ = await s.submit(Submission(req, user_id=1))
        behind, _ = await s.submit(Submission(req, user_id=2))  # the one worker is busy: not started yet
        await asyncio.sleep(0.3)
        await s.handle_event(JobEvent(alone.id, "done", result=GOOD))  # its "composing" was never seen
        latency = s.waits.latency("local")
        assert latency is not None and 0.3 <= latency < 5.0
        await s.handle_event(JobEvent(behind.id, "done", result=GOOD))  # no start known: no latency sample
        assert s.waits.latency("local") == latency
        await store.close()

    asyncio.run(run())


def test_holes_closed_use_checks_the_style_and_buttons_stay_in_their_guild(tmp_path: Path,
                                                                            tiny_checkpoint: Path) -> None:
    from bot.errors import CatalogError, ServiceError

    async def run() -> None:
        s = await service(tmp_path, Discord())
        (tmp_path / "jazz-v2").symlink_to(tiny_checkpoint)
        for style, says in (("x" * 150, "composes jazz, not 'xxxx"), ("@here", "composes jazz, not '@here'")):
            try:
                await s.use(style, "jazz-v2", 1)
            except CatalogError as exc:
                assert says in str(exc) and "\n" not in str(exc) and len(str(exc)) < 200
            else:
                raise AssertionError(f"use({style[:10]!r}) was accepted")
        assert "jazz" not in s.catalog.active
        job = await add(s, "queued")  # a job of guild 1
        for guild, says in ((99, "not known here"),):
            try:
                await s.cancel(job.id, 1, guild)
            except ServiceError as exc:
                assert says in str(exc)
            else:
                raise AssertionError("another guild's job was cancelled")
        await s.cancel(job.id, 1, 1)
        try:
            await s.cancel(job.id, 1, 1)  # a second press
        except ServiceError as exc:
            assert str(exc) == "that request is already cancelled"
        else:
            raise AssertionError("cancelled twice")
        await s.store.close()

    asyncio.run(run())
