from __future__ import annotations

import asyncio
from pathlib import Path

from bot.db import MIGRATIONS, Job, Store


def test_store_migrates_once_and_keeps_jobs(tmp_path: Path) -> None:
    async def run() -> None:
        store = await Store.open(tmp_path / "c.db")
        job = Job(Job.new_id(), 7, 1, 2, {"style": "jazz", "seconds": 30}, "jazz", "jazz", "abc", seed_midi=b"MThd")
        await store.add_job(job)
        await store.update_job(job.id, status="done", result={"seed": 1})
        await store.set_active("jazz", "jazz-v2", 7)
        await store.audit(7, 1, "use", "{}", False)
        await store.close()
        store = await Store.open(tmp_path / "c.db")  # a restart: migrations do not run twice
        assert await store.migrate() == len(MIGRATIONS)
        again = await store.get_job(job.id)
        assert again.status == "done" and again.result == {"seed": 1} and again.seed_midi == b"MThd"
        assert await store.active_checkpoints() == {"jazz": "jazz-v2"}
        assert (await store.audit_entries())[0]["allowed"] == 0
        assert [j.id for j in await store.jobs(("done",))] == [job.id]
        await store.close()

    asyncio.run(run())
