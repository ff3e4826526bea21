"""The Celery queue with real parts: a redis-server process and `chorus worker` processes.

The workers start with an empty checkpoints folder, so every job also shows that a checkpoint
reaches a worker through Redis. Workers run with a 6 s job timeout and batches of up to 4 jobs
(the default ``CHORUS_BATCH_MAX``), which makes the broker's visibility timeout (the wait before
a dead worker's job is redelivered) 41 s.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path

import pytest

from bot.queues.celery.app import ATTEMPTS_KEY, time_limits
from bot.queues.celery.parts import RedisServer, Workers
from bot.queues.celery.queue import OFFLINE, RESUMED, CeleryQueue
from bot.queues.celery.sync import meta_key, model_key
from tests.bot.celery_parts import Recorder, bot_settings, content_hash, item, run, running

pytestmark = pytest.mark.slow  # real processes end to end: `make test-fast` leaves these out

# batches of at most 2 (batching on, as by default): a dead worker's job comes back after the broker's
# visibility timeout, which grows with the batch (`time_limits`): 38 s here against 63 s with 4
BATCH_MAX = 2
JOB_TIMEOUT_S = 10  # a 6 s clip composes in ~0.7 s (several times that on a loaded machine); the slow test asks for ~25 s of work


@pytest.fixture(scope="module")
def worker_pool(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer):
    w = Workers(tmp_path_factory.mktemp("workers"), redis_server.url, job_timeout_s=JOB_TIMEOUT_S,
                CHORUS_BATCH_MAX=str(BATCH_MAX), CHORUS_SAMPLER="numpy")
    try:
        w.start(2)
        yield w
    finally:
        w.close()


@pytest.fixture
def workers(worker_pool: Workers) -> Workers:
    """Two live workers at the start of every test: one killed by a test (or lost to a hard
    limit on a very loaded machine) is replaced, so one test's end never decides the next's."""
    if missing := 2 - len(worker_pool.alive()):
        worker_pool.start(missing, timeout=180.0)  # a loaded machine starts torch slowly
    return worker_pool


def test_a_job_runs_on_a_worker_and_its_files_arrive_at_the_bot(tmp_path: Path, redis_server: RedisServer,
                                                                 workers: Workers, tiny_checkpoint: Path) -> None:
    h = content_hash(tiny_checkpoint)

    async def go() -> None:
        async with running(bot_settings(tmp_path, redis_server.url, {"jazz": tiny_checkpoint})) as (q, rec):
            status = await q.status()
            assert [w.alive for w in status.workers] == [True, True] and status.pending == 0
            assert await q.submit(item(tmp_path, "a", h)) >= 1
            await q.submit(item(tmp_path, "bad", h, changes="Dm7 Xq7"))
            await rec.wait("a", "bad")
        [done] = rec.finished("a")
        assert done.kind == "done" and {"composing", "rendering"} <= set(rec.stages("a"))
        files = {k: Path(v) for k, v in done.result["files"].items()}
        assert all(p.parent == tmp_path / "bot-data" / "jobs" / "a" for p in files.values())
        assert files["audio"].read_bytes()[:4] == b"OggS" and files["audio"].stat().st_size > 1000
        assert files["midi"].read_bytes()[:4] == b"MThd" and files["picture"].read_bytes()[:4] == b"\x89PNG"
        assert done.result["checkpoint_hash"] == h[:12] and "files_b64" not in done.result
        [bad] = rec.finished("bad")
        assert bad.kind == "failed" and "'Xq7'" in bad.error

    run(go())
    # the workers' own checkpoints folders are empty: the one that ran it fetched the checkpoint
    assert any((d / "checkpoint-cache" / h / "jazz" / "model.safetensors").is_file() for d in workers.data_dirs)


def test_a_checkpoint_swap_reaches_workers_started_before_it(tmp_path: Path, redis_server: RedisServer,
                                                            workers: Workers, tiny_checkpoint: Path,
                                                            tiny_checkpoint_b: Path) -> None:
    old, new = content_hash(tiny_checkpoint), content_hash(tiny_checkpoint_b)
    assert old != new

    async def go() -> None:
        settings = bot_settings(tmp_path, redis_server.url, {"jazz": tiny_checkpoint})
        async with running(settings) as (q, rec):
            await q.submit(item(tmp_path, "before", old))
            await rec.wait("before")
            bot_settings(tmp_path, redis_server.url, {"jazz": tiny_checkpoint_b})  # the admin's swap
            await q.submit(item(tmp_path, "after", new))
            # a hash nobody has, with junk published under it, fails with a clear line
            junk = "0" * 64
            redis_server.client().set(model_key(junk), b"not weights")
            redis_server.client().set(meta_key(junk), json.dumps({"content_hash": junk}))
            await q.submit(item(tmp_path, "junk", junk, checkpoint="ghost"))
            await rec.wait("after", "junk")
        assert rec.finished("before")[0].result["checkpoint_hash"] == old[:12]
        [after] = rec.finished("after")
        assert after.kind == "done" and after.result["checkpoint_hash"] == new[:12]
        [junk_end] = rec.finished("junk")
        assert junk_end.kind == "failed" and "do not match the hash" in junk_end.error

    run(go())
    assert redis_server.client().exists(model_key(new))


def test_stop_returns_when_a_state_change_wakes_the_watch_loop_as_it_stops(tmp_path: Path,
                                                                         redis_server: RedisServer) -> None:
    """Python 3.11's `asyncio.wait_for` drops a cancel that lands as the wait it guards ends, so a
    watch loop woken in the same moment as `stop` cancelled it used to run on and `stop` never
    returned (seen in CI: a bot restart hung for 600 s)."""
    async def go() -> None:
        for _ in range(5):
            q = CeleryQueue(bot_settings(tmp_path, redis_server.url, {}))
            await q.start()
            assert q._wake is not None
            q._wake.set()  # a worker stored a state just now
            await asyncio.wait_for(q.stop(), 4.0)

    run(go())


def test_a_job_submitted_again_after_a_bot_restart_runs_once(tmp_path: Path, redis_server: RedisServer,
                                                             workers: Workers, tiny_checkpoint: Path) -> None:
    h = content_hash(tiny_checkpoint)
    settings = bot_settings(tmp_path, redis_server.url, {"jazz": tiny_checkpoint})

    async def go() -> None:
        first = CeleryQueue(settings)
        await first.start()
        await first.submit(item(tmp_path, "twice", h, seconds=8))
        await first.stop()  # the bot goes away before the job is done
        second = CeleryQueue(settings)
        rec = Recorder(second)
        await second.start()
        try:
            await second.submit(item(tmp_path, "twice", h, seconds=8))  # what recover() does
            await rec.wait("twice", linger=2.0)
        finally:
            await second.stop()
        assert [e.kind for e in rec.finished("twice")] == ["done"]

    run(go())
    assert int(redis_server.client().get(ATTEMPTS_KEY + "twice")) == 1  # composed once


def test_jobs_accepted_while_redis_is_down_complete_once_it_is_back(tmp_path: Path, redis_server: RedisServer,
                                                                   workers: Workers, tiny_checkpoint: Path) -> None:
    h = content_hash(tiny_checkpoint)

    async def go() -> None:
        async with running(bot_settings(tmp_path, redis_server.url, {"jazz": tiny_checkpoint})) as (q, rec):
            await q.submit(item(tmp_path, "r1", h, seconds=8))
            redis_server.stop()  # and lose everything in it: no persistence
            started = time.monotonic()
            assert await q.submit(item(tmp_path, "r2", h)) == 1
            assert await q.submit(item(tmp_path, "r3", h)) == 2
            # accepted at once: nothing waits for Redis (which stays down until below); the bound is loose
            # because a loaded machine is slow, not because waiting a little would be fine
            assert time.monotonic() - started < 10.0
            assert (await q.status()).pending == 3
            while not all(OFFLINE in rec.stages(j) for j in ("r2", "r3")):
                await asyncio.sleep(0.1)
            redis_server.start()
            await rec.wait("r1", "r2", "r3", timeout=180, linger=2.0)
            deadline = time.monotonic() + 90
            while sum(w.answers_inspect for w in (await q.status()).workers) < 2:  # both workers reconnect
                if time.monotonic() > deadline:
                    raise AssertionError(f"the workers did not come back: {(await q.status()).workers}")
                await asyncio.sleep(0.5)
        for j in ("r1", "r2", "r3"):
            assert [e.kind for e in rec.finished(j)] == ["done"], rec.of(j)
            assert Path(rec.finished(j)[0].result["files"]["audio"]).is_file()
        assert RESUMED in rec.stages("r2") and rec.stages("r2").index(OFFLINE) < rec.stages("r2").index(RESUMED)

    run(go())


def test_a_job_past_its_time_limit_fails_and_the_worker_goes_on(tmp_path: Path, redis_server: RedisServer,
                                                               workers: Workers, tiny_checkpoint: Path) -> None:
    h = content_hash(tiny_checkpoint)

    async def go() -> None:
        async with running(bot_settings(tmp_path, redis_server.url, {"jazz": tiny_checkpoint})) as (q, rec):
            await q.submit(item(tmp_path, "slow", h, seconds=480, tempo=320))
            await rec.wait("slow", timeout=180, linger=0)
            await q.submit(item(tmp_path, "next", h))
            await rec.wait("next")
        [slow] = rec.finished("slow")
        assert slow.kind == "failed" and f"took longer than {JOB_TIMEOUT_S} s" in slow.error
        assert rec.finished("next")[0].kind == "done"

    run(go())
    assert len(workers.alive()) == 2


def test_a_worker_killed_mid_job_has_its_job_redelivered_and_delivered_once(
        tmp_path: Path, redis_server: RedisServer, workers: Workers, tiny_checkpoint: Path) -> None:
    h = content_hash(tiny_checkpoint)
    _, _, visibility = time_limits(JOB_TIMEOUT_S, BATCH_MAX)

    async def go() -> None:
        async with running(bot_settings(tmp_path, redis_server.url, {"jazz": tiny_checkpoint})) as (q, rec):
            await q.submit(item(tmp_path, "k", h, seconds=40))
            client = redis_server.client()
            while True:  # wait until a worker is composing it, then kill that worker
                raw = client.get(q._task_key("k"))
                meta = json.loads(raw) if raw else {}
                if meta.get("status") == "PROGRESS" and meta["result"]["stages"]:
                    break
                await asyncio.sleep(0.05)
            victim = meta["result"]["worker"]
            os.kill(meta["result"]["pid"], signal.SIGKILL)
            await rec.wait("k", timeout=visibility + 120, linger=2.0)  # polls: a loaded machine may need the margin
        [done] = rec.finished("k")
        assert done.kind == "done" and done.result["worker"]["node"] != victim
        assert "retrying" in rec.stages("k")
        assert Path(done.result["files"]["audio"]).is_file()

    run(go())
    assert len(workers.alive()) == 1


def test_a_malformed_progress_state_fails_its_own_job_and_the_others_finish(
        tmp_path: Path, redis_server: RedisServer, workers: Workers, tiny_checkpoint: Path) -> None:
    h = content_hash(tiny_checkpoint)

    async def go() -> None:
        async with running(bot_settings(tmp_path, redis_server.url, {"jazz": tiny_checkpoint})) as (q, rec):
            garbled = {"status": "PROGRESS", "result": {"attempt": "two", "stages": ["composing"]},
                       "traceback": None, "children": [], "date_done": None, "task_id": "garbled"}
            q.redis.set(q._task_key("garbled"), q.app.backend.encode(garbled), ex=600)  # as a foreign writer left it
            await q.submit(item(tmp_path, "garbled", h))
            await q.submit(item(tmp_path, "fine", h))
            await rec.wait("garbled", "fine")
        [bad] = rec.finished("garbled")
        assert bad.kind == "failed" and "unreadable" in bad.error
        [fine] = rec.finished("fine")
        assert fine.kind == "done"

    run(go())


def test_a_checkpoint_a_restarted_redis_lost_is_published_again_with_the_next_job(tmp_path: Path,
                                                                                  tiny_checkpoint: Path) -> None:
    """Redis restarted without its data between two jobs, too quickly for the bot to see it away:
    the next job publishes its checkpoint again, so a worker started since can fetch it (the soak
    found a job failed with 'not published to Redis' after a Redis restart and a worker restart)."""
    server = RedisServer(tmp_path / "redis")
    (tmp_path / "redis").mkdir()
    server.start()
    try:
        h = content_hash(tiny_checkpoint)
        keys = (model_key(h), meta_key(h))

        async def go() -> None:
            async with running(bot_settings(tmp_path, server.url, {"jazz": tiny_checkpoint})) as (q, _):
                await q.submit(item(tmp_path, "first", h))
                assert server.client().exists(*keys) == 2
                server.stop()
                server.start()  # same port, no persistence: the checkpoint's bytes are gone
                assert server.client().exists(*keys) == 0
                await q.submit(item(tmp_path, "second", h))
                assert server.client().exists(*keys) == 2

        run(go())
    finally:
        server.stop()
