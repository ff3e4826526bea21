"""The queue interface both backends implement, and what travels through it.

`JobQueue` is what the service uses: ``submit``, ``status``, ``cancel`` and progress events
delivered to one callback. `WorkItem` is one job as a worker needs it; `JobEvent` is what comes
back. The backends are `bot.queues.local.LocalQueue` and `bot.queues.celery.queue.CeleryQueue`.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bot.queues.policy import WorkerRow
from engine.compose.request import ComposeRequest, RequestError

log = logging.getLogger(__name__)


@dataclass
class WorkItem:
    """What a worker needs to compose one job: the request exactly as validated at the edge."""

    job_id: str
    request: ComposeRequest
    checkpoint: str  # folder name under the checkpoints directory
    checkpoint_hash: str
    out_dir: str  # the bot's folder for the job's files (a Celery worker writes none)
    attempts: int = 0  # starts that ended with a dead worker
    sheet: str = ""  # a clip's written notes (`engine.music.written.Written` JSON): set its lead sheet, compose nothing

    def to_payload(self) -> dict[str, Any]:
        """JSON-safe data for a worker (both backends): the request is `ComposeRequest.to_payload`."""
        payload = {"job_id": self.job_id, "request": self.request.to_payload(), "checkpoint": self.checkpoint,
                   "checkpoint_hash": self.checkpoint_hash, "out_dir": self.out_dir, "attempts": self.attempts}
        return {**payload, "sheet": self.sheet} if self.sheet else payload

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> WorkItem:
        """The item `to_payload` wrote.

        Raises:
            RequestError: a malformed request or item (KeyError and TypeError become this too).
        """
        try:
            return cls(str(payload["job_id"]), ComposeRequest.from_payload(payload["request"]),
                       str(payload["checkpoint"]), str(payload.get("checkpoint_hash") or ""),
                       str(payload.get("out_dir") or ""), int(payload.get("attempts") or 0),
                       str(payload.get("sheet") or ""))
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, RequestError):
                raise
            raise RequestError(f"a malformed work item: {exc!r}") from exc


@dataclass
class JobEvent:
    """``kind`` is progress (with ``stage``), done (with ``result``) or failed (with ``error``)."""

    job_id: str
    kind: str
    stage: str = ""
    result: dict[str, Any] | None = None
    error: str = ""


EventHandler = Callable[[JobEvent], Awaitable[None]]


@dataclass
class QueueStatus:
    pending: int
    running: int
    workers: list[WorkerRow]


class EventEmitter:
    """Hands events to the queue's ``on_event`` handler; a failing handler never stops the queue."""

    on_event: EventHandler | None = None

    async def _emit(self, event: JobEvent) -> None:
        if self.on_event is not None:
            try:
                await self.on_event(event)
            except Exception:  # the loop must go on whatever a handler does
                log.exception("event handler failed for job %s", event.job_id)


class JobQueue(Protocol):
    """The interface every backend implements."""

    on_event: EventHandler | None

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def submit(self, item: WorkItem) -> int: ...  # returns the position in the queue (1 = next)
    async def status(self) -> QueueStatus: ...
    async def cancel(self, job_id: str) -> bool: ...


class WorkerDied(Exception):
    pass


def out_dir_for(root: Path, job_id: str) -> Path:
    return root / "jobs" / job_id


async def cancel_all(tasks: list[asyncio.Task], timeout: float = 5.0) -> None:
    """Cancel `tasks` and wait for them to end, for at most `timeout` seconds.

    The cancel is sent again while a task runs on: Python 3.11's `asyncio.wait_for` drops a cancel
    that lands in the same moment as the wait it guards ends, and a loop that lost its cancel would
    otherwise keep its owner's `stop` waiting for ever.
    """
    end = time.monotonic() + timeout
    pending = {t for t in tasks if not t.done()}
    while pending and (left := end - time.monotonic()) > 0:
        for t in pending:
            t.cancel()
        _, pending = await asyncio.wait(pending, timeout=min(0.2, left))
    if pending:
        log.warning("%d task(s) still running after %.0f s: %s", len(pending), timeout,
                    ", ".join(t.get_name() for t in pending))
