"""What admins do through the service: stop a job, pause the queue, choose and remove checkpoints,
see the queue. A mixin of `bot.service.compose.ComposeService`, whose state it uses."""
from __future__ import annotations

from typing import Any

from bot.errors import CatalogError, ServiceError
from bot.store.db import FINISHED_STATUSES, Job

CANCELLED_BY_ADMIN = "cancelled by an admin"


class AdminOps:
    """The admin's operations (see the module docstring); ``store``, ``queue``, ``catalog``,
    ``paused`` and ``_fail`` are the compose service's."""

    store: Any
    queue: Any
    catalog: Any
    paused: bool

    async def _fail(self, job_id: str, reason: str, finished: bool = False) -> None:
        raise NotImplementedError  # the compose service's

    async def cancel_by_admin(self, job_id: str) -> Job:
        """Stop an unfinished job for an admin: the queue drops it, its user is told once.

        Raises:
            ServiceError: no such job, or it is finished already; one line.
        """
        job = await self.store.get_job(job_id.strip())
        if job is None:
            raise ServiceError(f"no job {job_id.strip()!r} (the id is in /chorus-admin queue and the bot's log)")
        if job.status in FINISHED_STATUSES:
            raise ServiceError(f"job {job.id} is {job.status} already")
        await self.queue.cancel(job.id)
        await self._fail(job.id, CANCELLED_BY_ADMIN)
        return job

    async def pause(self, paused: bool) -> None:
        self.paused = paused
        await self.store.set_flag("paused", "1" if paused else "0")

    async def use(self, style: str, checkpoint: str, user_id: int) -> str:
        """Make ``checkpoint`` serve ``style`` (an installed checkpoint trained for that style).

        Raises:
            CatalogError: no such checkpoint, or it is for another style; one line.
        """
        ck = self.catalog.get(checkpoint)
        if ck is None:
            raise CatalogError(f"no checkpoint named {checkpoint[:60]!r} is installed")
        if style != ck.style:
            raise CatalogError(f"checkpoint {ck.name} composes {ck.style}, not {style[:60]!r}: "
                               f"/chorus-admin use {ck.style} {ck.name}")
        await self.store.set_active(style, checkpoint, user_id)
        self.catalog.active[style] = checkpoint
        return ck.describe()

    async def remove(self, name: str) -> None:
        """Delete an installed checkpoint that serves no style and no unfinished job uses.

        Raises:
            CatalogError: unknown, serving a style, or still used; one line.
        """
        busy = sum(job.checkpoint == name for job in await self.store.jobs(("queued", "running")))
        if busy:
            jobs = f"{busy} unfinished jobs still use" if busy > 1 else "an unfinished job still uses"
            raise CatalogError(f"{jobs} {name}; remove it when {'they are' if busy > 1 else 'it is'} done")
        await self.catalog.remove(name)

    async def queue_summary(self) -> dict[str, Any]:
        status = await self.queue.status()
        return {"pending": status.pending, "running": status.running, "workers": status.workers,
                "accepted_open": await self.store.count(("queued", "running")), "paused": self.paused}
