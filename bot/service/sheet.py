"""The Sheet button: a clip's lead sheet (PNG and MusicXML), set by a worker when first asked for.

A delivered clip keeps its notes as written (``clip.written.json``, `engine.music.written.Written`)
in its folder. The first press sends them to the queue as a sheet job (``<job id>-sheet``, a
`bot.queues.base.WorkItem` with ``sheet`` set: either backend's worker sets it, composing nothing);
the files it saves beside the clip, ``clip-sheet.png`` and ``clip.musicxml``, are the cache: a
second press, from anyone and after a restart too, posts them again at once. Presses while the
sheet is being set wait for the same job.
"""
from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from bot.errors import ServiceError
from bot.queues.base import JobEvent, JobQueue, WorkItem, out_dir_for
from bot.store.db import Job

log = logging.getLogger(__name__)
SUFFIX = "-sheet"
FILES = ("clip-sheet.png", "clip.musicxml")
PRUNED = "this clip's files were removed by the retention policy, so it has no lead sheet any more"
OLDER = "this clip was made before lead sheets were kept; try Another take"


class SheetMaker:
    """Sets and caches clips' lead sheets through the job queue.

    Args:
        queue: the bot's job queue; `claims` must see its events before the compose service does.
        data_dir: the bot's data folder (jobs' files are under ``jobs/<job id>``).
        timeout_s: how long a press waits for a worker.
    """

    def __init__(self, queue: JobQueue, data_dir: Path, timeout_s: float) -> None:
        self.queue = queue
        self.data_dir = data_dir
        self.timeout_s = timeout_s
        self._waiting: dict[str, asyncio.Future[JobEvent]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def claims(self, event: JobEvent) -> bool:
        """Whether ``event`` is a sheet job's (its press is told); False for every clip's event."""
        future = self._waiting.get(event.job_id)
        if future is None:
            return event.job_id.endswith(SUFFIX)  # a sheet nobody waits for any more: dropped
        if event.kind != "progress" and not future.done():
            future.set_result(event)
        return True

    def cached(self, job: Job) -> list[Path] | None:
        """The clip's lead sheet files (PNG, MusicXML), when they were set before."""
        folder = out_dir_for(self.data_dir, job.id)
        paths = [folder / name for name in FILES]
        return paths if all(p.is_file() for p in paths) else None

    async def sheet(self, job: Job) -> list[Path]:
        """The clip's lead sheet files (PNG, MusicXML), set by a worker if they are not yet.

        Raises:
            ServiceError: the clip's files were pruned, it predates lead sheets, or the worker
                failed or took longer than ``timeout_s``.
        """
        if job.pruned_at is not None:
            raise ServiceError(PRUNED)
        lock = self._locks.setdefault(job.id, asyncio.Lock())
        async with lock:
            if (paths := await asyncio.to_thread(self.cached, job)) is not None:
                return paths
            written = await self._written(job)
            sheet_id = job.id + SUFFIX
            future: asyncio.Future[JobEvent] = asyncio.get_running_loop().create_future()
            self._waiting[sheet_id] = future
            try:
                await self.queue.submit(WorkItem(sheet_id, job.compose_request(), job.checkpoint, job.checkpoint_hash,
                                                 str(out_dir_for(self.data_dir, job.id)), sheet=written))
                event = await asyncio.wait_for(future, self.timeout_s)
            except TimeoutError as exc:
                raise ServiceError("the lead sheet took too long; try again in a minute") from exc
            finally:
                self._waiting.pop(sheet_id, None)
            if event.kind != "done":
                raise ServiceError(f"the lead sheet could not be made: {event.error}")
            if (paths := await asyncio.to_thread(self.cached, job)) is None:
                raise ServiceError("the lead sheet could not be saved")
            log.info("job %s: lead sheet set (%s)", job.id, (event.result or {}).get("timings"))
            return paths

    async def _written(self, job: Job) -> str:
        path = ((job.result or {}).get("files") or {}).get("written")
        if not path:
            raise ServiceError(OLDER)
        try:
            return await asyncio.to_thread(Path(path).read_text)
        except OSError as exc:
            raise ServiceError(PRUNED) from exc
