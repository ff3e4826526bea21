"""``chorus worker``: the Celery worker runtime and its compose task.

The worker process keeps one `engine.compose.composer.Composer` (created on its first job; the engine
and torch are imported only then), finds the job's checkpoint by content hash
(`bot.queues.celery.sync`), reports ``PROGRESS`` states with the stages so far, and returns the clip
packed from memory (`bot.queues.celery.payload.pack_result`). A task first looks for a finished result
under its id (a redelivered or re-sent job is not composed twice) and counts its attempts
(`bot.queues.policy.may_start`). With ``CHORUS_BATCH_MAX`` > 1 the tasks' jobs are composed in batches
(`bot.queues.celery.batch`); ``CHORUS_BATCH_MAX=1`` composes each task's job alone.

Celery's ``solo`` and ``threads`` pools (the only ones safe with CUDA) enforce no time limits.
A job composed alone gets a `Deadline` in the task's thread: at the soft limit it raises
`SoftTimeLimitExceeded` there (the job fails with a timeout message, the worker goes on); at the
hard limit, if it is stuck in native code, it stores the timeout as the job's result and ends the
process for its supervisor to restart. A batch's lane enforces the same limits on the batch's
outcomes (a batch of n jobs gets n job timeouts; `bot.queues.celery.batch`).
"""
from __future__ import annotations

import ctypes
import json
import logging
import os
import socket
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from celery import signals
from celery.exceptions import SoftTimeLimitExceeded

from bot.memory import return_large_buffers
from bot.queues import policy
from bot.queues.celery import sync as checkpoint_sync
from bot.queues.celery.app import (
    ATTEMPTS_KEY,
    HEARTBEAT_S,
    QUEUE,
    REDIS_PATIENCE_S,
    RESULT_TTL_S,
    TASK,
    WORKER_KEY,
    make_app,
    time_limits,
)
from bot.queues.celery.batch import IN_FLIGHT, Batcher, BatchJob
from bot.queues.celery.payload import decode_item, pack_result, pack_sheet
from bot.queues.celery.transport import TRANSPORT
from bot.settings import BotSettings, SettingsError
from engine.errors import EngineError

log = logging.getLogger(__name__)


class Deadline:
    """Soft and hard time limits for the code in a ``with`` block, in the thread that runs it.

    At ``soft_s`` the block gets `SoftTimeLimitExceeded` (delivered between Python bytecodes, so
    a long native call ends first); at ``hard_s`` ``on_hard`` runs in a timer thread.
    """

    def __init__(self, soft_s: float, hard_s: float, on_hard: Callable[[], None]) -> None:
        self._tid = threading.get_ident()
        self._lock = threading.Lock()
        self._armed = False
        self.fired = False
        self._soft = threading.Timer(soft_s, self._raise)
        self._hard = threading.Timer(hard_s, on_hard)
        self._soft.daemon = self._hard.daemon = True

    def __enter__(self) -> Deadline:
        self._armed = True
        self._soft.start()
        self._hard.start()
        return self

    def _raise(self) -> None:
        with self._lock:
            if self._armed:
                self.fired = True
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self._tid),
                                                           ctypes.py_object(SoftTimeLimitExceeded))

    def cancel(self) -> None:
        """Stop both timers; a soft limit raised but not yet delivered is dropped. Idempotent."""
        self._hard.cancel()
        self._soft.cancel()
        with self._lock:
            self._armed = False
        if self.fired:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self._tid), None)

    def __exit__(self, *exc: object) -> None:
        self.cancel()


class WorkerState:
    """What one worker process keeps between jobs: settings, the Composer, a Redis client."""

    def __init__(self, settings: BotSettings, node: str, concurrency: int) -> None:
        import redis
        from redis.backoff import ExponentialBackoff
        from redis.retry import Retry

        self.settings = settings
        self.node = node
        self.concurrency = concurrency
        # A job that meets a Redis outage (fetching a checkpoint, counting attempts) waits for it,
        # up to about REDIS_PATIENCE_S, as the result backend does; it does not fail the job.
        retry = Retry(ExponentialBackoff(cap=2.0, base=0.05), int(REDIS_PATIENCE_S / 2))
        self.redis = redis.Redis.from_url(str(settings.redis_url), socket_connect_timeout=3, socket_timeout=30,
                                          retry=retry)
        self._beats = redis.Redis.from_url(str(settings.redis_url), socket_connect_timeout=2, socket_timeout=3)
        self.cache_root = Path(settings.data_dir) / "checkpoint-cache"
        self.jobs: dict[str, float] = {}  # job id -> time.time() it started here
        self._composer: Any = None
        self.batcher: Batcher | None = None  # set when CHORUS_BATCH_MAX > 1
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def composer(self) -> Any:
        """The process's Composer, created on first use (this imports torch, unless CHORUS_SAMPLER=numpy)."""
        with self._lock:
            if self._composer is None:
                from engine.compose.composer import Composer

                engine = self.settings.engine_only()
                self._composer = Composer(engine, numpy=engine.sampler == "numpy")
                log.info("composer ready on %s (%d torch threads)", self.settings.device, self.settings.torch_threads)
            return self._composer

    def heartbeat_forever(self) -> None:
        """Tell the bot every few seconds that this worker is alive and what it runs (``status``)."""
        self.beat()
        while not self._stop.wait(HEARTBEAT_S):
            self.beat()

    def beat(self) -> None:
        info = {"node": self.node, "pid": os.getpid(), "device": self.settings.device,
                "concurrency": self.concurrency, "jobs": dict(self.jobs), "at": time.time()}
        try:
            self._beats.set(WORKER_KEY + self.node, json.dumps(info), ex=int(HEARTBEAT_S * 3))
        except Exception as exc:  # Redis away: the next beat tries again
            log.debug("heartbeat failed: %s", exc)

    def stop(self) -> None:
        self._stop.set()
        if self.batcher is not None:
            self.batcher.stop()
        try:
            self._beats.delete(WORKER_KEY + self.node)
        except Exception as exc:  # Redis away: the key expires on its own
            log.debug("could not remove the heartbeat: %s", exc)


_worker: WorkerState | None = None


def compose_task(task: Any, payload: dict[str, Any]) -> dict[str, Any]:
    """The Celery task: compose one job. Returns the packed summary, or ``{"error": message}``."""
    if _worker is None:
        raise RuntimeError("the compose task runs only in `chorus worker`")
    w = _worker
    job_id = str(task.request.id)
    done = task.backend.get_task_meta(job_id, cache=False)
    if done.get("status") == "SUCCESS":  # redelivered or sent again after it finished
        log.info("job %s already has a result; not composing it again", job_id)
        return done["result"]
    attempt = int(w.redis.incr(ATTEMPTS_KEY + job_id))
    w.redis.expire(ATTEMPTS_KEY + job_id, RESULT_TTL_S)
    if not policy.may_start(attempt):
        log.warning("job %s: attempt %d, giving up", job_id, attempt)
        return {"error": policy.CRASHED_TWICE}
    started = time.time()
    stages: list[str] = []

    def report(stage: str | None = None) -> None:
        if stage is not None:
            stages.append(stage)
        # the task id named: in a batch this runs in the pipeline's threads, not the task's
        task.update_state(task_id=job_id, state="PROGRESS",
                          meta={"stages": list(stages), "attempt": attempt, "worker": w.node, "pid": os.getpid(),
                                "started_at": started})

    w.jobs[job_id] = started
    w.beat()
    try:
        report()
        return _compose(task, w, payload, report, started)
    finally:
        w.jobs.pop(job_id, None)
        w.beat()


def _compose(task: Any, w: WorkerState, payload: dict[str, Any], report: Callable[[str], None],
             started: float) -> dict[str, Any]:
    job_id = str(task.request.id)
    try:
        item = decode_item(payload)
        if item.sheet:  # a clip's lead sheet: no checkpoint, no composer, well under a second
            sheet = policy.make_sheet(item.sheet)
            return pack_sheet(sheet.musicxml, sheet.png, sheet.timings, {"node": w.node, "pid": os.getpid()})
        folder = checkpoint_sync.resolve(w.redis, w.settings.checkpoints_dir, w.cache_root, item.checkpoint,
                                         item.checkpoint_hash, w.settings.max_checkpoint_bytes)
        if w.batcher is not None:
            return w.batcher.submit(BatchJob(job_id, item.request, folder, item.checkpoint_hash, report, started))
        return _compose_alone(task, w, item.request, folder, report, started)
    except EngineError as exc:
        return {"error": str(exc)}
    except ValueError as exc:  # the files are over the cap
        return {"error": str(exc)}
    except Exception:  # a bug: one line for the user, the traceback in this worker's log
        log.error("job %s failed:\n%s", job_id, traceback.format_exc())
        return {"error": policy.INTERNAL_ERROR}


def _compose_alone(task: Any, w: WorkerState, request: Any, folder: Path, report: Callable[[str], None],
                   started: float) -> dict[str, Any]:
    """One job, not batched (``CHORUS_BATCH_MAX=1``), under its own `Deadline`."""
    job_id = str(task.request.id)
    soft, hard, _ = time_limits(w.settings.job_timeout_s)
    composer = w.composer()  # outside the time limit: the first job imports torch

    def give_up() -> None:  # the hard limit: stuck in native code
        log.error("job %s passed its hard limit of %.0f s; stopping this worker", job_id, hard)
        try:
            task.backend.store_result(job_id, {"error": policy.timeout_message(soft)}, "SUCCESS")
        finally:
            os._exit(70)

    deadline = Deadline(soft, hard, give_up)
    try:
        with deadline:
            result = composer.compose(request, checkpoint=folder, progress=report)
    except SoftTimeLimitExceeded:
        deadline.cancel()
        log.warning("job %s passed its %.0f s time limit", job_id, soft)
        return {"error": policy.timeout_message(soft)}
    return pack_result(result, {"node": w.node, "started_at": started, "finished_at": time.time(), "batch": 1})


def _batch_past_hard_limit(app: Any, soft: float, jobs: list[BatchJob]) -> None:
    """A batch stuck in native code past the hard limit: store its unfinished jobs' timeouts, then end."""
    log.error("jobs %s passed the hard time limit; stopping this worker", [j.job_id for j in jobs])
    try:
        for job in jobs:
            app.backend.store_result(job.job_id, {"error": policy.timeout_message(soft)}, "SUCCESS")
    finally:
        os._exit(70)


def make_batcher(app: Any, w: WorkerState, lanes: int) -> Batcher:
    """The worker's `Batcher`: ``lanes`` batches at once, each up to ``CHORUS_BATCH_MAX`` jobs."""
    timeout = w.settings.job_timeout_s

    def limits(jobs: int) -> tuple[float, float]:
        soft, hard, _ = time_limits(timeout, jobs)
        return soft, hard

    def revoked(job_id: str) -> bool:  # the worker's own record of revoke broadcasts (the task id is the job id)
        from celery.worker import state

        return job_id in state.revoked

    return Batcher(w.composer, limits, lambda jobs: _batch_past_hard_limit(app, timeout, jobs), timeout,
                   w.settings.batch_max, w.settings.batch_window_ms / 1000, lanes, {"node": w.node},
                   revoked=revoked)


def check_device(device: str) -> str:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N``; raises SettingsError otherwise."""
    if device in ("auto", "cpu", "cuda") or (device.startswith("cuda:") and device[5:].isdigit()):
        return device
    raise SettingsError(f"--device must be auto, cpu, cuda or cuda:N, got {device!r}")


def _quiet_reconnect_warning(**_: object) -> None:
    """Celery warns on every reconnect that 6.0 will cancel running tasks on connection loss; we chose
    not to (see `make_app`), so the warning says nothing new. (Celery's logging set-up, which runs
    before ``worker_ready``, turns such warnings on again, hence the signal.)"""
    warnings.filterwarnings("ignore", message=r"\s*In Celery 5.1 we introduced an optional breaking change")


def make_worker_app(settings: BotSettings) -> Any:
    """The worker's Celery app: the shared configuration, kombu's Redis transport made safe for
    messages of tasks running in threads through an outage, and the compose task registered."""
    app = make_app(settings, role="worker")
    app.conf.broker_transport = TRANSPORT
    # resultrepr_maxsize: the success line in the log would otherwise show the clip's base64
    app.task(bind=True, name=TASK, acks_late=True, reject_on_worker_lost=True, resultrepr_maxsize=200)(compose_task)
    return app


def run_worker(settings: BotSettings, concurrency: int = 1, node: str | None = None) -> None:
    """Run a Celery worker until it is stopped (``chorus worker``).

    One process, one Composer: the ``solo`` pool for one job at a time, ``threads`` for more
    (never ``prefork``: forking after CUDA is initialised breaks it). With ``CHORUS_BATCH_MAX`` > 1
    the ``threads`` pool has ``3 * batch_max`` slots for each of ``concurrency`` lanes: a lane's
    pipeline holds two batches at once, one sampling while the other renders, and a third batch's
    tasks wait ready for it (a slot frees only once a clip is stored; `bot.queues.celery.batch`).
    """
    global _worker
    if concurrency < 1:
        raise SettingsError(f"--concurrency must be at least 1, got {concurrency}")
    check_device(settings.device)
    return_large_buffers()
    node = node or f"chorus-{os.getpid()}@{socket.gethostname()}"
    app = make_worker_app(settings)
    _worker = WorkerState(settings, node, concurrency)
    threading.Thread(target=_worker.heartbeat_forever, name="chorus-heartbeat", daemon=True).start()
    slots = concurrency
    if settings.batch_max > 1:
        _worker.batcher = make_batcher(app, _worker, concurrency)
        slots = concurrency * settings.batch_max * (IN_FLIGHT + 1)
    pool = "solo" if slots == 1 else "threads"
    signals.worker_ready.connect(_quiet_reconnect_warning, weak=False)
    log.info("worker %s: pool %s, concurrency %d, batches of up to %d, device %s, queue %s", node, pool, concurrency,
             settings.batch_max, settings.device, QUEUE)
    try:
        app.worker_main(["worker", f"--pool={pool}", f"--concurrency={slots}", f"--hostname={node}",
                         f"--queues={QUEUE}", f"--loglevel={settings.log_level}", "--without-gossip",
                         "--without-mingle"])
    finally:
        _worker.stop()
