"""The local queue with real worker processes composing with a tiny checkpoint."""
from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

from bot.queues.base import JobEvent, WorkItem, cancel_all
from bot.queues.local import LocalQueue
from bot.queues.worker import NICENESS
from bot.settings import BotSettings
from tests.helpers import work_item


def settings_for(tmp_path: Path, ck: Path) -> BotSettings:
    root = tmp_path / "checkpoints"
    root.mkdir(exist_ok=True)
    if not (root / "jazz").exists():
        (root / "jazz").symlink_to(ck)
    return BotSettings(checkpoints_dir=root, data_dir=tmp_path / "data")


def item(tmp_path: Path, job_id: str, seconds: float = 6, **req) -> WorkItem:
    return work_item(tmp_path, job_id, seconds, **req)


async def collect(queue: LocalQueue, want: set[str], timeout: float = 120) -> dict[str, list[JobEvent]]:
    events: dict[str, list[JobEvent]] = {}
    finished: set[str] = set()
    done = asyncio.Event()

    async def on_event(e: JobEvent) -> None:
        events.setdefault(e.job_id, []).append(e)
        if e.kind in ("done", "failed"):
            finished.add(e.job_id)
            if want <= finished:
                done.set()

    queue.on_event = on_event
    await asyncio.wait_for(done.wait(), timeout)
    return events


def test_jobs_run_in_worker_processes_with_progress(tiny_checkpoint: Path, tmp_path: Path) -> None:
    async def run() -> None:
        q = LocalQueue(settings_for(tmp_path, tiny_checkpoint), workers=1, job_timeout_s=60)
        await q.start()
        try:
            waiter = asyncio.create_task(collect(q, {"a", "b", "bad"}))
            await asyncio.sleep(0)
            assert await q.submit(item(tmp_path, "a")) >= 1
            await q.submit(item(tmp_path, "bad", changes="Dm7 Xq7"))
            await q.submit(item(tmp_path, "b", seconds=8))
            events = await waiter
            worker = q._workers[0].proc
            assert worker is not None  # it yields the CPU to the bot's event loop when both want it
            assert os.getpriority(os.PRIO_PROCESS, worker.pid) == min(19, os.getpriority(os.PRIO_PROCESS, 0) + NICENESS)
        finally:
            await q.stop()
        assert [e.kind for e in events["a"]][-1] == "done"
        assert {"composing", "rendering"} <= {e.stage for e in events["a"] if e.kind == "progress"}
        assert Path(events["a"][-1].result["files"]["audio"]).stat().st_size > 1000
        assert events["bad"][-1].kind == "failed" and "'Xq7'" in events["bad"][-1].error
        assert events["b"][-1].kind == "done"
        # waiting jobs went to the worker together: a and b were sampled in one batch
        assert events["a"][-1].result["timings"]["sample"] == events["b"][-1].result["timings"]["sample"]

    asyncio.run(run())


def test_a_dead_worker_is_restarted_and_the_job_retried(tiny_checkpoint: Path, tmp_path: Path) -> None:
    async def run() -> None:
        q = LocalQueue(settings_for(tmp_path, tiny_checkpoint), workers=1, job_timeout_s=60)
        await q.start()
        try:
            waiter = asyncio.create_task(collect(q, {"k"}))
            await q.submit(item(tmp_path, "k"))
            for _ in range(200):  # wait until the worker has the job, then kill it
                if (await q.status()).running:
                    break
                await asyncio.sleep(0.05)
            os.kill(q._workers[0].proc.pid, signal.SIGKILL)
            events = await waiter
            status = await q.status()
        finally:
            await q.stop()
        kinds = [(e.kind, e.stage) for e in events["k"]]
        assert ("progress", "retrying") in kinds and kinds[-1][0] == "done"
        assert status.workers[0].restarts == 1 and status.workers[0].alive

    asyncio.run(run())


def test_a_job_past_its_timeout_is_stopped(tiny_checkpoint: Path, tmp_path: Path) -> None:
    async def run() -> None:
        q = LocalQueue(settings_for(tmp_path, tiny_checkpoint), workers=1, job_timeout_s=0.5)
        await q.start()
        try:
            waiter = asyncio.create_task(collect(q, {"slow"}))
            await q.submit(item(tmp_path, "slow", seconds=60))
            events = await waiter
        finally:
            await q.stop()
        assert events["slow"][-1].kind == "failed" and "took longer than" in events["slow"][-1].error

    asyncio.run(run())


def test_a_worker_samples_the_next_batch_while_the_last_one_renders(tiny_checkpoint: Path, tmp_path: Path) -> None:
    async def run() -> list[tuple[str, str, str]]:
        q = LocalQueue(settings_for(tmp_path, tiny_checkpoint), workers=1, job_timeout_s=60)
        seen: list[tuple[str, str, str]] = []
        finished = asyncio.Event()

        async def on_event(e: JobEvent) -> None:
            seen.append((e.job_id, e.kind, e.stage))
            if (e.job_id, e.kind, e.stage) == ("a", "progress", "composing"):  # a is sampling: b and c wait
                await q.submit(item(tmp_path, "b"))
                await q.submit(item(tmp_path, "c", seconds=7))
            if sum(kind in ("done", "failed") for _, kind, _ in seen) == 3:
                finished.set()

        q.on_event = on_event
        await q.start()
        try:
            await q.submit(item(tmp_path, "a", seconds=40))
            await asyncio.wait_for(finished.wait(), 120)
        finally:
            await q.stop()
        return seen

    seen = asyncio.run(run())
    for job in "abc":  # each job: its progress, then exactly one result
        kinds = [(kind, stage) for j, kind, stage in seen if j == job]
        assert kinds == [("progress", "composing"), ("progress", "rendering"), ("done", "")], (job, kinds)
    # b and c went to the worker once a was sampled, and were composing before a was done
    assert seen.index(("b", "progress", "composing")) < seen.index(("a", "done", ""))


def test_cancelling_a_job_a_worker_has_stops_it(tiny_checkpoint: Path, tmp_path: Path) -> None:
    """An admin cancels a job while it renders: the worker gives it up (a 180 s clip would take
    seconds more) and the next job is composed as usual."""
    async def run() -> None:
        q = LocalQueue(settings_for(tmp_path, tiny_checkpoint), workers=1, job_timeout_s=120)
        await q.start()
        try:
            events: dict[str, list[JobEvent]] = {}
            done = asyncio.Event()

            async def on_event(e: JobEvent) -> None:
                events.setdefault(e.job_id, []).append(e)
                if e.job_id == "long" and e.kind == "progress" and e.stage == "rendering":
                    await q.cancel("long")
                if {"long", "next"} <= {k for k, v in events.items() if v[-1].kind in ("done", "failed")}:
                    done.set()

            q.on_event = on_event
            await q.submit(item(tmp_path, "long", seconds=180, tempo=200))
            await q.submit(item(tmp_path, "next"))
            await asyncio.wait_for(done.wait(), 120)
        finally:
            await q.stop()
        assert events["long"][-1].kind == "failed" and "stopped" in events["long"][-1].error
        assert events["next"][-1].kind == "done"

    asyncio.run(run())


def test_cancel_all_ends_a_task_that_lost_its_first_cancel() -> None:
    """As a loop does when Python 3.11's `wait_for` drops a cancel: it runs on after the first."""
    async def go() -> None:
        async def deaf() -> None:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                pass  # the cancel lost
            await asyncio.Event().wait()

        async def plain() -> None:
            await asyncio.Event().wait()

        tasks = [asyncio.create_task(deaf()), asyncio.create_task(plain())]
        await asyncio.sleep(0)
        await asyncio.wait_for(cancel_all(tasks, timeout=3.0), 5.0)
        assert all(t.cancelled() for t in tasks)

    asyncio.run(go())
