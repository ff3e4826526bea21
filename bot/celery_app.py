"""The Celery side of the queue: the app both ends share, the compose task, and ``chorus worker``.

Redis is the broker and the result backend. A job is one task whose id is the job id; its
payload is JSON (`encode_item`). The worker process keeps one `engine.compose.Composer`
(created on its first job; the engine and torch are imported only then), finds the job's
checkpoint by content hash (`bot.checkpoint_sync`), reports ``PROGRESS`` states with the stages
so far, and returns the summary with the clip's files inline (base64, size-capped): workers may
run on other machines than the bot.

Nothing is lost when a worker dies: tasks are acknowledged late and the Redis transport puts an
unacknowledged message back after the visibility timeout, which is longer than the hard time
limit. A task first looks for a finished result under its id (a redelivered or re-sent job is
not composed twice) and counts its attempts (a job that crashes workers twice fails).

Celery's ``solo`` and ``threads`` pools (the only ones safe with CUDA) enforce no time limits,
so `Deadline` does: at the soft limit it raises `SoftTimeLimitExceeded` in the task's thread (the
job fails with a timeout message, the worker goes on); at the hard limit, if the task is stuck in
native code, it stores the timeout as the job's result and ends the process for its supervisor
to restart.
"""
from __future__ import annotations

import base64
import ctypes
import dataclasses
import json
import logging
import os
import socket
import tempfile
import threading
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from celery import Celery, signals
from celery.exceptions import SoftTimeLimitExceeded

from bot import checkpoint_sync
from bot.queue import WorkItem
from bot.worker import run_job
from engine.errors import EngineError
from engine.settings import Settings, SettingsError

log = logging.getLogger(__name__)

QUEUE = "chorus"
TASK = "chorus.compose"
RESULT_TTL_S = 24 * 3600  # results (and the "sent" markers) live this long in Redis
MAX_RESULT_BYTES = 24 * 1024 * 1024  # the clip's files, before base64
MAX_ATTEMPTS = 2  # deliveries of one job that may start composing (a crash, then one retry)
RESTORE_INTERVAL_S = 2  # how often idle workers look for messages of dead workers
HEARTBEAT_S = 5.0
REDIS_PATIENCE_S = 300.0
ATTEMPTS_KEY = "chorus:attempts:"
SENT_KEY = "chorus:sent:"
WORKER_KEY = "chorus:worker:"
TIMEOUT_MESSAGE = "this request took longer than {s:.0f} s and was stopped"


def time_limits(job_timeout_s: float) -> tuple[float, float, int]:
    """(soft limit, hard limit, broker visibility timeout) in seconds for a job timeout.

    The visibility timeout must exceed the hard limit, or a job still running would be handed
    to a second worker.
    """
    soft = float(job_timeout_s)
    hard = soft + max(5.0, soft / 4)
    visibility = int(hard + max(10.0, hard / 4)) + 1
    return soft, hard, visibility


def make_app(settings: Settings, role: str = "bot") -> Celery:
    """The Celery app for the bot (``role="bot"``: sends and watches) or a worker (runs the task).

    Raises:
        SettingsError: an unknown role.
    """
    if role not in ("bot", "worker"):
        raise SettingsError(f"role must be bot or worker, got {role!r}")
    url = str(settings.redis_url)
    soft, hard, visibility = time_limits(settings.job_timeout_s)
    app = Celery("chorus", broker=url, backend=url, set_as_current=False)
    app.conf.update(
        task_serializer="json", result_serializer="json", accept_content=["json"], result_accept_content=["json"],
        task_default_queue=QUEUE, task_create_missing_queues=True,
        task_acks_late=True, task_reject_on_worker_lost=True, task_track_started=True,
        worker_prefetch_multiplier=1,
        task_soft_time_limit=soft, task_time_limit=hard,  # documentation for Celery; `Deadline` enforces them
        broker_transport_options={"visibility_timeout": visibility, "unacked_restore_interval": RESTORE_INTERVAL_S,
                                  "unacked_restore_throttle": 1, "socket_connect_timeout": 3},
        broker_connection_retry=True, broker_connection_retry_on_startup=True, broker_connection_max_retries=None,
        broker_connection_timeout=3,
        # A clip finished during a Redis outage is stored when Redis is back; cancelling it would
        # only compose it again.
        worker_cancel_long_running_tasks_on_connection_loss=False,
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5},
        result_expires=RESULT_TTL_S, result_extended=False,
        redis_socket_connect_timeout=3, redis_socket_timeout=30, redis_retry_on_timeout=True,
        # Workers keep trying to store a result through an outage; the bot gives up and goes offline.
        result_backend_always_retry=role == "worker", result_backend_max_retries=10_000 if role == "worker" else 0,
        worker_send_task_events=False, task_send_sent_event=False,
        worker_hijack_root_logger=True, worker_redirect_stdouts=False,
    )
    if role == "worker":
        # resultrepr_maxsize: the success line in the log would otherwise show the clip's base64
        app.task(bind=True, name=TASK, acks_late=True, reject_on_worker_lost=True,
                 resultrepr_maxsize=200)(compose_task)
    return app


# -- the payload ------------------------------------------------------------------------------


def encode_item(item: WorkItem) -> dict[str, Any]:
    """A work item as JSON-safe task arguments (the bot's output folder stays with the bot)."""
    return {"job_id": item.job_id, "request": item.request, "checkpoint": item.checkpoint,
            "checkpoint_hash": item.checkpoint_hash, "attempts": item.attempts,
            "seed_midi": base64.b64encode(item.seed_midi).decode() if item.seed_midi is not None else None}


def decode_item(payload: dict[str, Any], out_dir: str) -> WorkItem:
    seed = payload.get("seed_midi")
    return WorkItem(str(payload["job_id"]), dict(payload["request"]), str(payload["checkpoint"]),
                    str(payload.get("checkpoint_hash") or ""), out_dir,
                    base64.b64decode(seed) if seed is not None else None, int(payload.get("attempts") or 0))


def pack_files(summary: dict[str, Any], limit: int = MAX_RESULT_BYTES) -> dict[str, Any]:
    """The summary with its files' bytes inline (``files_b64``: kind -> name, data) instead of paths.

    Raises:
        ValueError: the files are larger than ``limit`` bytes together.
    """
    paths = {kind: Path(p) for kind, p in summary.get("files", {}).items()}
    total = sum(p.stat().st_size for p in paths.values())
    if total > limit:
        raise ValueError(f"the clip's files are {total / 1e6:.1f} MB; at most {limit / 1e6:.0f} MB can be returned")
    out = {k: v for k, v in summary.items() if k != "files"}
    out["files_b64"] = {kind: {"name": p.name, "data": base64.b64encode(p.read_bytes()).decode()}
                        for kind, p in paths.items()}
    return out


def unpack_files(result: dict[str, Any], out_dir: Path, limit: int = MAX_RESULT_BYTES) -> dict[str, Any]:
    """Write a packed result's files into ``out_dir``; returns the summary with local ``files`` paths.

    Raises:
        ValueError: a bad file name or more than ``limit`` bytes.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    total = 0
    for kind, f in result.get("files_b64", {}).items():
        name = str(f["name"])
        if "/" in name or "\\" in name or name.startswith(".") or not name:
            raise ValueError(f"refusing the file name {name!r} in a worker's result")
        data = base64.b64decode(f["data"])
        total += len(data)
        if total > limit:
            raise ValueError(f"a worker's result is over {limit / 1e6:.0f} MB")
        path = out_dir / name
        tmp = path.with_name(path.name + ".part")
        tmp.write_bytes(data)
        tmp.replace(path)
        files[kind] = str(path)
    summary = {k: v for k, v in result.items() if k != "files_b64"}
    summary["files"] = files
    (out_dir / "summary.json").write_text(json.dumps(summary))
    return summary


# -- the worker -------------------------------------------------------------------------------


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

    def __init__(self, settings: Settings, node: str, concurrency: int) -> None:
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
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def composer(self) -> Any:
        """The process's Composer, created on first use (this imports torch)."""
        with self._lock:
            if self._composer is None:
                from engine.compose import Composer

                self._composer = Composer(self.settings)
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
    if attempt > MAX_ATTEMPTS:
        log.warning("job %s: attempt %d, giving up", job_id, attempt)
        return {"error": "the composer crashed twice on this request"}
    started = time.time()
    stages: list[str] = []

    def report(stage: str | None = None) -> None:
        if stage is not None:
            stages.append(stage)
        task.update_state(state="PROGRESS", meta={"stages": list(stages), "attempt": attempt, "worker": w.node,
                                                  "pid": os.getpid(), "started_at": started})

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
    soft, hard, _ = time_limits(w.settings.job_timeout_s)
    composer = w.composer()  # outside the time limit: the first job imports torch

    def give_up() -> None:  # the hard limit: stuck in native code
        log.error("job %s passed its hard limit of %.0f s; stopping this worker", job_id, hard)
        try:
            task.backend.store_result(job_id, {"error": TIMEOUT_MESSAGE.format(s=soft)}, "SUCCESS")
        finally:
            os._exit(70)

    with tempfile.TemporaryDirectory(prefix="chorus-job-") as tmp:
        try:
            item = decode_item(payload, tmp)
            folder = checkpoint_sync.resolve(w.redis, w.settings.checkpoints_dir, w.cache_root, item.checkpoint,
                                             item.checkpoint_hash, w.settings.max_checkpoint_bytes)
            settings = dataclasses.replace(w.settings, checkpoints_dir=folder.parent)
            item = dataclasses.replace(item, checkpoint=folder.name)
            deadline = Deadline(soft, hard, give_up)
            try:
                with deadline:
                    summary = run_job(composer, settings, item, report)
            except SoftTimeLimitExceeded:
                deadline.cancel()
                log.warning("job %s passed its %.0f s time limit", job_id, soft)
                return {"error": TIMEOUT_MESSAGE.format(s=soft)}
            packed = pack_files(summary)
        except EngineError as exc:
            return {"error": str(exc)}
        except ValueError as exc:  # the files are over the cap
            return {"error": str(exc)}
        except Exception:  # a bug: one line for the user, the traceback in this worker's log
            log.error("job %s failed:\n%s", job_id, traceback.format_exc())
            return {"error": "an internal error stopped this request (it has been logged)"}
    packed["worker"] = {"node": w.node, "started_at": started, "finished_at": time.time()}
    return packed


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


def run_worker(settings: Settings, concurrency: int = 1, node: str | None = None) -> None:
    """Run a Celery worker until it is stopped (``chorus worker``).

    One process, one Composer: the ``solo`` pool for one job at a time, ``threads`` for more
    (never ``prefork``: forking after CUDA is initialised breaks it).
    """
    global _worker
    if concurrency < 1:
        raise SettingsError(f"--concurrency must be at least 1, got {concurrency}")
    check_device(settings.device)
    node = node or f"chorus-{os.getpid()}@{socket.gethostname()}"
    app = make_app(settings, role="worker")
    _worker = WorkerState(settings, node, concurrency)
    threading.Thread(target=_worker.heartbeat_forever, name="chorus-heartbeat", daemon=True).start()
    pool = "solo" if concurrency == 1 else "threads"
    signals.worker_ready.connect(_quiet_reconnect_warning, weak=False)
    log.info("worker %s: pool %s, concurrency %d, device %s, queue %s", node, pool, concurrency, settings.device, QUEUE)
    try:
        app.worker_main(["worker", f"--pool={pool}", f"--concurrency={concurrency}", f"--hostname={node}",
                         f"--queues={QUEUE}", f"--loglevel={settings.log_level}", "--without-gossip",
                         "--without-mingle"])
    finally:
        _worker.stop()
