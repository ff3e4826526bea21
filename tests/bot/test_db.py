from __future__ import annotations

import asyncio
from pathlib import Path

from bot.store.db import MIGRATIONS, Job, Store


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


def test_counting_uses_count_and_never_loads_rows(tmp_path: Path) -> None:
    async def run() -> None:
        store = await Store.open(tmp_path / "c.db")
        for user in (1, 1, 2):
            await store.add_job(Job(Job.new_id(), user, 1, 2, {"v": 1}, "jazz", "jazz", "abc", seed_midi=b"M" * 100_000))
        statements: list[str] = []
        await store.conn._execute(store.conn._conn.set_trace_callback, statements.append)
        assert await store.count(("queued",)) == 3 and await store.count(("queued",), 1) == 2
        assert statements and all("COUNT(*)" in s and "seed_midi" not in s for s in statements)
        await store.close()

    asyncio.run(run())


def test_retention_prunes_finished_jobs_only(tmp_path: Path) -> None:
    from bot.settings import BotSettings
    from bot.store import retention

    async def run() -> None:
        store = await Store.open(tmp_path / "c.db")
        jobs = {}
        for status in ("delivered", "failed", "queued"):
            job = Job(Job.new_id(), 1, 1, 2, {"v": 1, "seed_midi": "TVRoZA=="}, "jazz", "jazz", "abc",
                      interaction_token="secret-token")
            await store.add_job(job)
            await store.update_job(job.id, status=status)
            (tmp_path / "jobs" / job.id).mkdir(parents=True)
            jobs[status] = job.id
        settings = BotSettings(keep_clips_days=1, keep_seeds_days=2, keep_tokens_days=3)
        day = retention.DAY_S
        now = __import__("time").time()
        assert await retention.prune(store, tmp_path, settings, now=now) == {"clips": 0, "seeds": 0, "tokens": 0}
        assert await retention.prune(store, tmp_path, settings, now=now + 1.5 * day) == {"clips": 2, "seeds": 0, "tokens": 0}
        assert await retention.prune(store, tmp_path, settings, now=now + 3.5 * day) == {"clips": 0, "seeds": 2, "tokens": 2}
        assert (tmp_path / "jobs" / jobs["queued"]).exists() and not (tmp_path / "jobs" / jobs["failed"]).exists()
        kept = await store.get_job(jobs["queued"])
        gone = await store.get_job(jobs["delivered"])
        assert kept.interaction_token == "secret-token" and kept.request["seed_midi"] == "TVRoZA=="
        assert gone.interaction_token is None and gone.request["seed_midi"] is None and gone.pruned_at is not None
        await store.close()

    asyncio.run(run())


def test_chorus_backup_copies_the_database_while_it_is_open(tmp_path: Path) -> None:
    import os
    import sqlite3
    import subprocess
    import sys

    from tests.helpers import REPO

    async def fill() -> Store:
        store = await Store.open(tmp_path / "chorus.db")
        await store.add_job(Job(Job.new_id(), 7, 1, 2, {"style": "jazz", "seconds": 30}, "jazz", "jazz", "abc"))
        await store.audit(7, 1, "cancel", "{}", True)
        return store

    def run(*args: str) -> subprocess.CompletedProcess:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO), "HOME": str(tmp_path),
               "CHORUS_HOME": str(tmp_path)}
        return subprocess.run([sys.executable, "-m", "bot.cli", "backup", *args], cwd=tmp_path / "elsewhere",
                              env=env, capture_output=True, text=True, timeout=120)

    (tmp_path / "elsewhere").mkdir()
    loop = asyncio.new_event_loop()
    store = loop.run_until_complete(fill())  # the bot's connection stays open during the backup
    try:
        out = run("backups/one.db")  # relative to the current folder, like any output file
        assert out.returncode == 0, out.stderr
        with sqlite3.connect(tmp_path / "elsewhere" / "backups" / "one.db") as db:
            assert db.execute("SELECT count(*) FROM jobs").fetchone() == (1,)
            assert db.execute("SELECT action FROM audit_log").fetchall() == [("cancel",)]
        again = run("backups/one.db")
        assert again.returncode == 2 and "exists; choose a new file" in again.stderr
    finally:
        loop.run_until_complete(store.close())
        loop.close()
