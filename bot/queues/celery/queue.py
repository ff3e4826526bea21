"""`CeleryQueue`: the bot's side of the Celery backend (``CHORUS_QUEUE=celery``).

It sends each job as a Celery task whose id is the job id, watches the tasks' states in Redis
(one ``MGET`` per round, off the event loop; a thread subscribed to the result backend's
notifications starts a round as soon as a state changes), turns the workers' ``PROGRESS`` stages into progress
events, and on success writes the clip's files (returned inline by the worker, which may run on
another machine) into the job's folder before emitting ``done``.

Nothing accepted is lost:

* Redis unreachable: `submit` still accepts (the job is already in SQLite), holds the job here and,
  after `OFFLINE_NOTICE_S`, reports the stage ``offline``; a background loop pings Redis and sends
  the held jobs when it is back (stage ``resumed`` for jobs that were told ``offline``).
* Redis restarted empty: a watched job with neither a state nor a "sent" marker in Redis was lost
  with it, and is sent again.
* Sent twice (a bot restart re-submits unfinished jobs): a job whose task has a state or a "sent"
  marker is only watched, not sent again; a worker that gets a job with a stored result returns it
  without composing; the service ignores events for jobs already delivered.

After a clip is saved here, its large result in Redis is replaced by a small "consumed" marker.
"""
from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import redis
from kombu.exceptions import OperationalError
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from bot.queues.base import EventEmitter, EventHandler, JobEvent, QueueStatus, WorkItem, cancel_all
from bot.queues.celery import sync as checkpoint_sync
from bot.queues.celery.app import (
    ATTEMPTS_KEY,
    QUEUE,
    RESULT_TTL_S,
    SENT_KEY,
    TASK,
    WORKER_KEY,
    make_app,
)
from bot.queues.celery.payload import encode_item, unpack_result, worker_rows
from bot.queues.policy import WorkerRow
from bot.settings import BotSettings
from engine.errors import EngineError

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Errors that mean "Redis is unreachable" (redis-py's, kombu's when publishing, plain socket errors).
DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OperationalError, OSError)
OFFLINE = "offline"  # progress stage: the composer is unreachable; the request is saved
RESUMED = "resumed"  # progress stage: the composer is back and the request is queued again
OFFLINE_NOTICE_S = 2.0  # tell users only about outages longer than this (and after their "queued" reply)
RECONNECT_S = 1.0
POLL_S = 0.5  # the longest wait between looks at the watched jobs; a state change wakes the loop at once
SUBMIT_BUDGET_S = 2.0  # a submit slower than this holds the job here (Discord wants a reply within 3 s)
PUBLISH_REFRESH_S = 60.0
STOP_WAIT_S = 5.0  # the longest `stop` waits for the watch loop and a publish in flight


@dataclass
class _Watched:
    item: WorkItem
    stages: int = 0  # stages of the current attempt already reported
    attempt: int = 1
    told_offline: bool = False


class CeleryQueue(EventEmitter):
    """Jobs run by Celery workers fed through Redis (see the module docstring)."""

    def __init__(self, settings: BotSettings, poll_s: float = POLL_S) -> None:
        self.settings = settings
        self.poll_s = poll_s
        self.app = make_app(settings, role="bot")
        self.on_event: EventHandler | None = None
        self.redis = redis.Redis.from_url(str(settings.redis_url), socket_connect_timeout=2, socket_timeout=5,
                                          retry=Retry(ExponentialBackoff(cap=0.5), 1))
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="chorus-celery")
        self._watched: dict[str, _Watched] = {}
        self._held: list[WorkItem] = []  # accepted while Redis was unreachable, in order
        self._told: set[str] = set()  # held jobs told "offline"
        self._online = True
        self._offline_since = 0.0
        self._next_try = 0.0
        self._published: dict[str, float] = {}  # content hash -> when it was last published or refreshed
        self._tasks: list[asyncio.Task] = []
        self._wake: asyncio.Event | None = None
        self._closing = threading.Event()

    # -- the JobQueue interface ----------------------------------------------------------------

    async def start(self) -> None:
        self._wake = asyncio.Event()
        loop = asyncio.get_running_loop()
        threading.Thread(target=self._listen, args=(loop, self._wake), name="chorus-celery-listen", daemon=True).start()
        if not await self._ping():
            self._go_offline("no answer at start")
        self._tasks.append(asyncio.create_task(self._run(), name="celery-queue-poll"))
        if self._online:
            self._tasks.append(asyncio.create_task(self._call(self._publish_installed), name="celery-publish"))

    async def stop(self) -> None:
        self._closing.set()
        if self._wake is not None:
            self._wake.set()
        await cancel_all(self._tasks, STOP_WAIT_S)  # the watch loop also ends on `_closing`
        self._tasks.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)
        try:
            await asyncio.wait_for(asyncio.to_thread(self._close), 5)
        except (TimeoutError, *DOWN) as exc:
            log.debug("closing the Celery connections: %s", exc)

    async def submit(self, item: WorkItem) -> int:
        """Send the job (or hold it while Redis is away). Returns its position (1 = next)."""
        if item.job_id in self._watched:
            return 1
        if any(h.job_id == item.job_id for h in self._held):
            return len(self._held)
        if self._online:
            fut = asyncio.ensure_future(self._call(self._send, item))
            try:
                position = await asyncio.wait_for(asyncio.shield(fut), SUBMIT_BUDGET_S)
                self._watch(item)
                return position
            except DOWN as exc:
                self._go_offline(exc)
            except TimeoutError:  # it may still get through; the marker keeps a second send from duplicating it
                fut.add_done_callback(lambda f: f.cancelled() or f.exception())
                self._go_offline(f"no answer within {SUBMIT_BUDGET_S:.0f} s")
        self._held.append(item)
        return len(self._held)

    async def status(self) -> QueueStatus:
        held = len(self._held)
        if self._online:
            try:
                pending, beats = await asyncio.wait_for(self._call(self._status_from_redis), 3)
            except (TimeoutError, *DOWN) as exc:
                log.info("status: Redis unreachable (%s)", exc)
            else:
                try:
                    active = await asyncio.wait_for(self._call(self._active), 3)
                except (TimeoutError, *DOWN) as exc:  # the heartbeats still tell who is alive
                    log.info("status: no answer to inspect (%s)", exc)
                    active = {}
                workers = worker_rows(beats, active)
                return QueueStatus(pending + held, sum(len(w.jobs) for w in workers), workers)
        down = WorkerRow("redis", False, error="Redis is unreachable; requests are held by the bot")
        return QueueStatus(held + len(self._watched), 0, [down])

    async def cancel(self, job_id: str) -> bool:
        self._held = [h for h in self._held if h.job_id != job_id]
        if self._online:
            try:
                await asyncio.wait_for(self._call(self.app.control.revoke, job_id), 3)
            except (TimeoutError, *DOWN) as exc:
                log.info("could not revoke job %s: %s", job_id, exc)
        return True

    # -- Redis calls (in this queue's threads, never on the event loop) -------------------------

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def _task_key(self, job_id: str) -> bytes:
        return self.app.backend.get_key_for_task(job_id)

    def _send(self, item: WorkItem) -> int:
        """Publish the checkpoint, then send the task unless Redis knows it already. Returns the position."""
        self._publish_checkpoint(item)
        raw, sent = self.redis.mget([self._task_key(item.job_id), SENT_KEY + item.job_id])
        meta = self._decode(raw)
        consumed = meta is not None and _is_consumed(meta)
        if (meta is not None and not consumed) or (meta is None and sent is not None):
            log.info("job %s is known to Redis already (%s); watching it", item.job_id,
                     meta.get("status") if meta else "queued")
            return max(1, int(self.redis.llen(QUEUE)))
        if consumed:  # saved by a run of the bot that did not finish its bookkeeping: compose it again
            self.redis.delete(self._task_key(item.job_id), ATTEMPTS_KEY + item.job_id)
        self.app.send_task(TASK, args=[encode_item(item)], task_id=item.job_id, queue=QUEUE)
        self.redis.set(SENT_KEY + item.job_id, str(time.time()), ex=RESULT_TTL_S)
        return max(1, int(self.redis.llen(QUEUE)))

    def _publish_checkpoint(self, item: WorkItem) -> None:
        h = item.checkpoint_hash
        if not h:
            return
        if time.monotonic() - self._published.get(h, -1e9) < PUBLISH_REFRESH_S \
                and self.redis.exists(checkpoint_sync.model_key(h), checkpoint_sync.meta_key(h)) == 2:
            return  # published lately and still there (a Redis restarted without its data has lost it)
        folder = checkpoint_sync.find_local(self.settings.checkpoints_dir, item.checkpoint, h)
        if folder is None:
            log.warning("job %s: checkpoint %s (%s) is no longer here; workers must have it", item.job_id,
                        item.checkpoint, h[:12])
            return
        if checkpoint_sync.publish(self.redis, folder, h, self.settings.max_checkpoint_bytes):
            self._published[h] = time.monotonic()

    def _publish_installed(self) -> None:
        """Publish every installed checkpoint, so the first job of each need not wait for it."""
        from engine.models.checkpoint import CheckpointError, read_meta

        root = Path(self.settings.checkpoints_dir)
        for folder in sorted(root.iterdir()) if root.is_dir() else []:
            try:
                h = str(read_meta(folder)["content_hash"])
                if checkpoint_sync.publish(self.redis, folder, h, self.settings.max_checkpoint_bytes):
                    self._published[h] = time.monotonic()
            except CheckpointError:
                continue
            except DOWN as exc:
                log.info("publishing checkpoints stopped: %s", exc)
                return

    def _decode(self, raw: bytes | None) -> dict[str, Any] | None:
        if raw is None:
            return None
        try:
            meta = self.app.backend.decode(raw)
        except Exception as exc:  # a foreign value under the key: treat it as unknown
            log.warning("unreadable task state in Redis: %s", exc)
            return None
        return meta if isinstance(meta, dict) else None

    def _snapshot(self, ids: list[str]) -> dict[str, tuple[dict[str, Any] | None, bool]]:
        values = self.redis.mget([self._task_key(i) for i in ids] + [SENT_KEY + i for i in ids])
        n = len(ids)
        return {job_id: (self._decode(values[k]), values[n + k] is not None) for k, job_id in enumerate(ids)}

    def _consume(self, job_id: str) -> None:
        """Replace a saved clip's result with a small marker (the files are here now)."""
        meta = {"status": "SUCCESS", "result": {"consumed": True}, "traceback": None, "children": [],
                "date_done": None, "task_id": job_id}
        try:
            self.redis.set(self._task_key(job_id), self.app.backend.encode(meta), ex=RESULT_TTL_S)
        except DOWN as exc:  # the full result expires on its own
            log.debug("could not shrink the result of job %s: %s", job_id, exc)

    def _status_from_redis(self) -> tuple[int, dict[str, dict[str, Any]]]:
        pending = int(self.redis.llen(QUEUE))
        keys = list(self.redis.scan_iter(match=WORKER_KEY + "*", count=100))
        beats: dict[str, dict[str, Any]] = {}
        for raw in self.redis.mget(keys) if keys else []:
            try:
                info = json.loads(raw) if raw else None
            except ValueError:
                continue
            if isinstance(info, dict) and info.get("node"):
                beats[str(info["node"])] = info
        return pending, beats

    def _active(self) -> dict[str, list[dict[str, Any]]]:
        return self.app.control.inspect(timeout=1.0).active() or {}

    def _listen(self, loop: asyncio.AbstractEventLoop, wake: asyncio.Event) -> None:
        """Thread: wake the watch loop whenever a worker stores a state (Celery's Redis backend
        publishes each one on a channel named like its key). Only a hint: the loop reads the
        states itself, and still looks every `poll_s` while this is disconnected."""
        pattern = self.app.backend.task_keyprefix + b"*"
        while not self._closing.is_set():
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.psubscribe(pattern)
                while not self._closing.is_set():
                    if pubsub.get_message(timeout=1.0) is not None:
                        loop.call_soon_threadsafe(wake.set)
            except Exception as exc:  # Redis away, or the loop closed while stopping: a hint is all this is
                log.debug("state notifications paused: %s", exc)
                self._closing.wait(RECONNECT_S)
            finally:
                pubsub.close()

    def _close(self) -> None:
        self.redis.close()
        self.app.close()

    # -- the watch loop ------------------------------------------------------------------------

    def _watch(self, item: WorkItem) -> None:
        self._watched.setdefault(item.job_id, _Watched(item))

    async def _ping(self) -> bool:
        try:
            return bool(await asyncio.wait_for(self._call(self.redis.ping), 3))
        except (TimeoutError, *DOWN):
            return False

    def _go_offline(self, why: object) -> None:
        if self._online:
            log.warning("Redis at the configured URL is unreachable (%s); holding jobs until it is back", why)
            self._online = False
            self._offline_since = time.monotonic()
            self._next_try = time.monotonic() + RECONNECT_S
            self._published.clear()

    async def _run(self) -> None:
        wake = self._wake or asyncio.Event()
        while not self._closing.is_set():
            try:
                await asyncio.wait_for(wake.wait(), self.poll_s)
                await asyncio.sleep(0.02)  # let a burst of notifications arrive before one round
            except TimeoutError:
                pass
            wake.clear()
            if self._closing.is_set():
                return
            try:
                await self._tick()
            except Exception:  # keep watching whatever one round did
                log.exception("celery queue: a poll round failed")

    async def _tick(self) -> None:
        if not self._online:
            await self._tell_offline()
            if time.monotonic() >= self._next_try:
                self._next_try = time.monotonic() + RECONNECT_S
                if await self._ping():
                    await self._back_online()
            return
        if not self._watched:
            return
        ids = list(self._watched)
        try:
            snapshot = await self._call(self._snapshot, ids)
        except DOWN as exc:
            self._go_offline(exc)
            return
        for job_id in ids:
            meta, sent = snapshot[job_id]
            try:
                await self._advance(job_id, meta, sent)
            except Exception:  # a malformed state fails its own job, never the round
                log.exception("job %s: its task state could not be read: %r", job_id, meta)
                self._watched.pop(job_id, None)
                await self._emit(JobEvent(job_id, "failed", error="the composer reported something unreadable"))

    async def _tell_offline(self) -> None:
        if time.monotonic() - self._offline_since < OFFLINE_NOTICE_S:
            return
        for w in list(self._watched.values()):
            if not w.told_offline:
                w.told_offline = True
                await self._emit(JobEvent(w.item.job_id, "progress", stage=OFFLINE))
        for item in list(self._held):
            if item.job_id not in self._told:
                self._told.add(item.job_id)
                await self._emit(JobEvent(item.job_id, "progress", stage=OFFLINE))

    async def _back_online(self) -> None:
        """Send the held jobs in order (submits meanwhile join the end), then accept directly again."""
        log.info("Redis is back; sending %d held jobs", len(self._held))
        while self._held:
            item = self._held[0]
            try:
                await self._call(self._send, item)
            except DOWN as exc:
                log.info("Redis went away again: %s", exc)
                return
            self._held.pop(0)
            self._watch(item)
            if item.job_id in self._told:
                self._told.discard(item.job_id)
                await self._emit(JobEvent(item.job_id, "progress", stage=RESUMED))
        self._online = True
        for w in list(self._watched.values()):
            if w.told_offline:
                w.told_offline = False
                await self._emit(JobEvent(w.item.job_id, "progress", stage=RESUMED))
        self._tasks.append(asyncio.create_task(self._call(self._publish_installed), name="celery-publish"))

    async def _advance(self, job_id: str, meta: dict[str, Any] | None, sent: bool) -> None:
        """Act on one watched job's state: report new stages, finish it, or send it again if lost."""
        w = self._watched.get(job_id)
        if w is None:
            return
        status = meta.get("status") if meta else None
        info = meta.get("result") if meta else None
        if (meta is None and not sent) or (status == "SUCCESS" and _is_consumed(meta)):
            log.warning("job %s is unknown to Redis (restarted without its data?); sending it again", job_id)
            self._published.clear()
            try:
                await self._call(self._send, w.item)
            except DOWN as exc:
                self._go_offline(exc)
        elif status == "PROGRESS" and isinstance(info, dict):
            attempt = int(info.get("attempt") or 1)
            if attempt > w.attempt:
                w.attempt, w.stages = attempt, 0
                await self._emit(JobEvent(job_id, "progress", stage="retrying"))
            stages = [str(s) for s in info.get("stages") or []]
            for stage in stages[w.stages:]:
                await self._emit(JobEvent(job_id, "progress", stage=stage))
            w.stages = max(w.stages, len(stages))
        elif status == "SUCCESS":
            self._watched.pop(job_id, None)
            await self._finish(w, info)
        elif status in ("FAILURE", "REVOKED"):
            self._watched.pop(job_id, None)
            error = "this request was cancelled" if status == "REVOKED" else "the composer failed on this request"
            log.warning("job %s: task %s (%s)", job_id, status, info)
            await self._emit(JobEvent(job_id, "failed", error=error))

    async def _finish(self, w: _Watched, info: Any) -> None:
        job_id = w.item.job_id
        if not isinstance(info, dict):
            await self._emit(JobEvent(job_id, "failed", error="the composer returned nothing usable"))
            return
        if info.get("error"):
            await self._emit(JobEvent(job_id, "failed", error=str(info["error"])))
            return
        try:
            summary = await asyncio.to_thread(unpack_result, info, Path(w.item.out_dir))
        except (EngineError, ValueError, OSError) as exc:
            log.error("job %s: could not save the clip: %s", job_id, exc)
            await self._emit(JobEvent(job_id, "failed", error="the finished clip could not be saved"))
            return
        await self._emit(JobEvent(job_id, "done", result=summary))
        try:
            await self._call(self._consume, job_id)
        except RuntimeError:  # the pool is shut down: stopping
            pass


def _is_consumed(meta: dict[str, Any]) -> bool:
    result = meta.get("result")
    return meta.get("status") == "SUCCESS" and isinstance(result, dict) and bool(result.get("consumed"))
