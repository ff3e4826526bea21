"""A waiting job's status message keeps its place and wait up to date (`bot.service.waiting`), with a real
SQLite store: only what changed is edited, never a job that started, and never past a lock held
by another edit of the same message."""
from __future__ import annotations

import asyncio
from pathlib import Path

from bot.service import waiting
from bot.service.estimate import Estimate, WaitEstimator
from bot.service.waiting import WaitingBoard
from bot.store.db import Job, Store
from engine.compose.request import ComposeRequest
from engine.settings import Settings


class Shows:
    """Records each "queued" edit as (job id, position, wait text)."""

    def __init__(self) -> None:
        self.edits: list[tuple[str, int, str]] = []

    async def queued(self, job: Job, position: int, wait: Estimate) -> None:
        self.edits.append((job.id, position, wait.text()))


async def board_with_jobs(tmp: Path, n: int) -> tuple[WaitingBoard, Store, list[Job]]:
    """``n`` queued jobs, each shown at its place when accepted (10 s a job, one worker, a guess)."""
    store = await Store.open(tmp / "c.db")
    board = WaitingBoard(store, WaitEstimator(10.0, 1), "local")
    req = ComposeRequest.build("jazz", "6s", Settings(), ["jazz"], seed=1)
    jobs = []
    for i in range(n):
        job = Job(Job.new_id(), 1, 1, 2, req.to_payload(), "jazz", "jazz", "abc", created_at=1000.0 + i)
        await store.add_job(job)
        board.shown(job.id, i + 1, board.waits.estimate("local", i + 1))
        jobs.append(job)
    return board, store, jobs


def test_when_the_first_job_starts_the_others_move_up_once(tmp_path: Path) -> None:
    async def run() -> None:
        board, store, jobs = await board_with_jobs(tmp_path, 3)
        shows = Shows()
        assert await board.refresh(shows) == 0  # nothing moved yet: no edit
        await store.update_job(jobs[0].id, status="running")
        board.forget(jobs[0].id)  # its progress replaced the queued text
        assert await board.refresh(shows) == 2
        # one job runs ahead: the next waits its own time and the running one's
        assert shows.edits == [(jobs[1].id, 1, "about 20 s at a guess"), (jobs[2].id, 2, "about 30 s at a guess")]
        assert await board.refresh(shows) == 0  # unchanged since shown
        await store.close()

    asyncio.run(run())


def test_a_job_without_a_shown_place_is_never_edited(tmp_path: Path) -> None:
    async def run() -> None:
        board, store, jobs = await board_with_jobs(tmp_path, 2)
        board.forget(jobs[1].id)  # e.g. "offline" shows on its message
        await store.update_job(jobs[0].id, status="running")
        shows = Shows()
        assert await board.refresh(shows) == 0 and shows.edits == []
        board.shown(jobs[1].id)  # "queued again": its place is shown at the next refresh
        assert await board.refresh(shows) == 1 and shows.edits == [(jobs[1].id, 1, "about 20 s at a guess")]
        await store.close()

    asyncio.run(run())


def test_a_job_that_starts_during_another_edit_of_its_message_gets_no_queued_edit(tmp_path: Path) -> None:
    async def run() -> None:
        board, store, jobs = await board_with_jobs(tmp_path, 2)
        await store.update_job(jobs[0].id, status="failed")  # the first one is cancelled: the second moves up
        shows = Shows()
        lock = board.editing(jobs[1].id)
        await lock.acquire()  # its progress edit is in flight
        refresh = asyncio.create_task(board.refresh(shows))
        while not lock._waiters:  # the refresh waits for the lock
            await asyncio.sleep(0)
        await store.update_job(jobs[1].id, status="running")
        board.forget(jobs[1].id)
        lock.release()
        assert await refresh == 0 and shows.edits == []
        await store.close()

    asyncio.run(run())


def test_only_the_front_of_the_queue_is_kept_up_to_date(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(waiting, "REFRESH_MAX", 2)

    async def run() -> None:
        board, store, jobs = await board_with_jobs(tmp_path, 4)
        await store.update_job(jobs[0].id, status="running")
        board.forget(jobs[0].id)
        shows = Shows()
        assert await board.refresh(shows) == 2
        assert [e[0] for e in shows.edits] == [jobs[1].id, jobs[2].id]
        await store.close()

    asyncio.run(run())
