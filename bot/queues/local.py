"""The local backend: worker processes on this machine.

`LocalQueue` (the `bot.queues.base.JobQueue` of ``CHORUS_QUEUE=local``) runs jobs in worker *processes* on this machine (they
load checkpoints once and keep the synthesizer loaded); the event loop only passes messages.
Jobs already waiting when a worker frees up go to it together (up to ``batch_max``), so their
sampling runs as one batch. A worker that dies is restarted and its jobs retried once; a job
past its timeout is stopped. A worker that times a clip as it starts (``warm_styles``) gets its
first jobs once it has said how long that took (the figure goes to the service as a ``warm``
event), so no job's timeout runs while it warms up.
"""
from __future__ import annotations

import asyncio
import logging
import multiprocessing as mp
import time

from bot.queues import policy
from bot.queues.base import (
    EventEmitter,
    EventHandler,
    JobEvent,
    QueueStatus,
    WorkerDied,
    WorkItem,
    cancel_all,
)
from bot.queues.policy import WorkerRow
from engine.settings import Settings

log = logging.getLogger(__name__)
PIPELINE_BATCHES = 2  # batches a local worker holds at once: one sampling while one renders and encodes
WARM_TIMEOUT_S = 120.0  # the longest a starting worker may take to time its clips


class _Worker:
    """One worker process and the pipe to it."""

    def __init__(self, index: int, settings: Settings, warm_styles: int = 0) -> None:
        self.index = index
        self.settings = settings
        self.warm_styles = warm_styles
        self.warming = False  # started and not yet heard from about its clip timing
        self.proc: mp.process.BaseProcess | None = None
        self.conn = None
        self.job: WorkItem | None = None
        self.open: dict[str, WorkItem] = {}  # the jobs sent to it and not yet finished
        self.since = 0.0
        self.restarts = -1

    def start(self) -> None:
        from bot.queues.worker import worker_main

        ctx = mp.get_context("spawn")
        parent, child = ctx.Pipe()
        self.proc = ctx.Process(target=worker_main, args=(child, self.settings, self.warm_styles),
                                name=f"chorus-worker-{self.index}", daemon=True)
        self.proc.start()
        child.close()
        self.conn = parent
        self.restarts += 1
        self.warming = self.warm_styles > 0

    def kill(self) -> None:
        if self.proc is not None and self.proc.is_alive():
            self.proc.kill()
            self.proc.join(5)
        if self.conn is not None:
            self.conn.close()

    async def receive(self, timeout: float) -> tuple:
        """The next message from the worker; raises WorkerDied or TimeoutError."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future = loop.create_future()
        conn, sentinel = self.conn, self.proc.sentinel

        def readable() -> None:
            if not fut.done():
                try:
                    fut.set_result(conn.recv())
                except (EOFError, OSError) as exc:
                    fut.set_exception(WorkerDied(str(exc)))

        def died() -> None:
            if not fut.done() and not conn.poll():
                fut.set_exception(WorkerDied(f"exit code {self.proc.exitcode}"))

        loop.add_reader(conn.fileno(), readable)
        loop.add_reader(sentinel, died)
        try:
            return await asyncio.wait_for(fut, timeout)
        finally:
            loop.remove_reader(conn.fileno())
            loop.remove_reader(sentinel)


class LocalQueue(EventEmitter):
    """Jobs run by worker processes on this machine."""

    def __init__(self, settings: Settings, workers: int = 1, job_timeout_s: float = 120.0, batch_max: int = 4,
                 warm_styles: int = 0) -> None:
        self.settings = settings
        self.job_timeout_s = job_timeout_s
        self.batch_max = max(1, batch_max)
        self.on_event: EventHandler | None = None
        self._pending: asyncio.Queue[WorkItem] = asyncio.Queue()
        self._cancelled: set[str] = set()
        # workers get engine keys only
        self._workers = [_Worker(i, settings.engine_only(), warm_styles) for i in range(workers)]
        self._tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        for w in self._workers:
            w.start()
            self._tasks.append(asyncio.create_task(self._run(w), name=f"worker-loop-{w.index}"))

    async def stop(self) -> None:
        await cancel_all(self._tasks)
        self._tasks.clear()
        for w in self._workers:
            if w.conn is not None and w.proc is not None and w.proc.is_alive():
                try:
                    w.conn.send(None)
                except OSError:
                    pass
                w.proc.join(2)
            w.kill()

    async def submit(self, item: WorkItem) -> int:
        self._cancelled.discard(item.job_id)
        await self._pending.put(item)
        return self._pending.qsize()

    async def status(self) -> QueueStatus:
        workers = [WorkerRow(str(w.index), bool(w.proc and w.proc.is_alive()), w.job.job_id if w.job else None,
                             round(time.monotonic() - w.since, 1) if w.job else 0.0, w.restarts,
                             (w.job.job_id,) if w.job else ()) for w in self._workers]
        return QueueStatus(self._pending.qsize(), sum(1 for w in self._workers if w.job), workers)

    async def cancel(self, job_id: str) -> bool:
        """Drop a waiting job, or stop a job a worker already has (from its render on; it is then
        delivered as failed, which the service, having failed it already, ignores)."""
        self._cancelled.add(job_id)
        for w in self._workers:
            if job_id in w.open and w.conn is not None:
                try:
                    w.conn.send(("cancel", job_id))
                except OSError:  # the worker is gone: its restart drops the job anyway
                    pass
        return True

    async def _run(self, w: _Worker) -> None:
        while True:
            if w.warming:
                await self._warm(w)
            batch = self._take([await self._pending.get()])
            if not batch:
                continue
            w.job, w.since = batch[0], time.monotonic()
            try:
                await self._batch(w, batch)
            finally:
                w.job = None

    async def _warm(self, w: _Worker) -> None:
        """Wait for a starting worker's clip timing and pass it on (a ``warm`` event, no job)."""
        w.warming = False
        try:
            kind, _, seconds = await w.receive(WARM_TIMEOUT_S)
        except (TimeoutError, WorkerDied, OSError, EOFError) as exc:  # its first batch finds out what is wrong
            log.warning("worker %d did not time a clip (%s)", w.index, exc or type(exc).__name__)
            return
        if kind == "warm" and seconds is not None:
            await self._emit(JobEvent("", "warm", result={"seconds": float(seconds)}))

    def _take(self, batch: list[WorkItem]) -> list[WorkItem]:
        """``batch`` and the jobs already waiting (up to ``batch_max``: they share one sampling
        batch), less the cancelled."""
        while len(batch) < self.batch_max and not self._pending.empty():
            batch.append(self._pending.get_nowait())
        return [i for i in batch if i.job_id not in self._cancelled]

    async def _batch(self, w: _Worker, items: list[WorkItem]) -> None:
        """Run jobs on one worker; each job has ``job_timeout_s`` from the previous one's end.

        The worker pipelines: once it says ``ready`` (its batch is sampled) it gets the jobs now
        waiting, at most ``PIPELINE_BATCHES`` batches at once, so the next batch samples while the
        previous one renders and encodes. Every job's messages are handled here until all are done.
        """
        open_items = w.open = {i.job_id: i for i in items}
        batches = [set(open_items)]  # job ids of each batch sent and not yet finished
        current = items[0]
        deadline = time.monotonic() + self.job_timeout_s
        try:
            w.conn.send(("jobs", [i.to_payload() for i in items]))
            ready = False
            while open_items:
                kind, job_id, payload = await w.receive(max(0.01, deadline - time.monotonic()))
                if kind == "ready":
                    ready = True
                elif job_id in open_items and kind == "progress":
                    await self._emit(JobEvent(job_id, "progress", stage=payload))
                elif job_id in open_items:
                    del open_items[job_id]
                    deadline = time.monotonic() + self.job_timeout_s
                    await self._emit(JobEvent(job_id, "done", result=payload) if kind == "done"
                                     else JobEvent(job_id, "failed", error=payload))
                batches = [b & open_items.keys() for b in batches if b & open_items.keys()]
                # jobs finish in the order sent: the oldest open one is the one running out its time
                current = w.job = next(iter(open_items.values()), current)
                if ready and open_items and len(batches) < PIPELINE_BATCHES and self._send_more(w, open_items, batches):
                    ready = False
        except TimeoutError:  # before OSError: TimeoutError is one
            log.warning("job %s passed its %.0f s timeout; restarting worker %d", current.job_id, self.job_timeout_s, w.index)
            w.kill()
            w.start()
            open_items.pop(current.job_id, None)
            await self._emit(JobEvent(current.job_id, "failed",
                                      error=policy.timeout_message(self.job_timeout_s)))
            for item in open_items.values():  # the others did nothing wrong: run them again
                await self._pending.put(item)
        except (WorkerDied, OSError, EOFError, BrokenPipeError) as exc:
            log.warning("worker %d died on jobs %s (%s); restarting it", w.index, list(open_items), exc)
            w.kill()
            w.start()
            for item in open_items.values():
                item.attempts += 1
                if policy.may_start(item.attempts + 1):
                    await self._pending.put(item)
                    await self._emit(JobEvent(item.job_id, "progress", stage="retrying"))
                else:
                    await self._emit(JobEvent(item.job_id, "failed", error=policy.CRASHED_TWICE))

    def _send_more(self, w: _Worker, open_items: dict[str, WorkItem], batches: list[set[str]]) -> bool:
        """Send the jobs waiting (one more batch) to a worker that has sampled its last; False if none."""
        more = self._take([]) if not self._pending.empty() else []
        if not more:
            return False
        w.conn.send(("jobs", [i.to_payload() for i in more]))
        open_items.update((i.job_id, i) for i in more)
        batches.append({i.job_id for i in more})
        return True
