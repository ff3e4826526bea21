"""Batched Celery workers (``CHORUS_BATCH_MAX=4``) with real parts: a redis-server process and two
`chorus worker` processes.

To make one batch on purpose, a test lets only one worker consume (Celery's ``cancel_consumer``
for the other) and the workers gather for up to 3 s (``CHORUS_BATCH_WINDOW_MS``), so four jobs
submitted together always share a batch. With an 8 s job timeout a batch of four has 32 s, and the
broker's visibility timeout (the wait before a dead worker's jobs are redelivered) is 51 s.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from bot.queues import policy
from bot.queues.celery.app import ATTEMPTS_KEY, QUEUE, make_app, time_limits
from bot.queues.celery.batch import Batcher, BatchJob
from bot.queues.celery.parts import RedisServer, Workers
from bot.queues.celery.queue import CeleryQueue
from bot.settings import BotSettings, Secret
from engine.errors import EngineError, Stopped
from tests.bot.celery_parts import (
    bot_settings,
    content_hash,
    item,
    run,
    running,
    task_meta,
    unacked_ids,
)

pytestmark = pytest.mark.slow  # real processes end to end: `make test-fast` leaves these out

JOB_TIMEOUT_S = 8
BATCH_MAX = 4


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer):
    # one FluidSynth thread: with more, the same MIDI renders to audio that differs from run to run
    # (by ~6% RMS with 2 threads, whatever batching does), so clips could not be compared
    w = Workers(tmp_path_factory.mktemp("workers"), redis_server.url, job_timeout_s=JOB_TIMEOUT_S,
                CHORUS_BATCH_MAX=str(BATCH_MAX), CHORUS_BATCH_WINDOW_MS="3000", CHORUS_SYNTH_THREADS="1")
    try:
        w.start(2)
        yield w
    finally:
        w.close()


def node_of(proc: subprocess.Popen) -> str:
    return f"chorus-{proc.pid}@{socket.gethostname()}"  # `run_worker`'s default node name


@contextlib.contextmanager
def only_consumer(url: str, keep: subprocess.Popen, procs: list[subprocess.Popen]) -> Iterator[list[str]]:
    """Only worker ``keep`` takes jobs from the queue inside the block; yields the others' node names."""
    app = make_app(BotSettings(redis_url=Secret(url)))
    others = [node_of(p) for p in procs if p is not keep and p.poll() is None]
    try:
        if others:
            replies = app.control.cancel_consumer(QUEUE, destination=others, reply=True, timeout=10)
            assert len(replies) == len(others), replies
        yield others
    finally:
        if others:
            app.control.add_consumer(QUEUE, destination=others, reply=True, timeout=10)
        app.close()


def ogg_without_serial(data: bytes) -> bytes:
    """An Ogg file with each page's stream serial number and checksum zeroed: ffmpeg picks a random
    serial for every file, so two encodes of the same audio differ only there."""
    out, pos = bytearray(data), 0
    while pos < len(data):
        assert data[pos:pos + 4] == b"OggS", f"no Ogg page at byte {pos}"
        segments = data[pos + 26]
        body = sum(data[pos + 27:pos + 27 + segments])
        out[pos + 14:pos + 18] = struct.pack("<I", 0)  # serial
        out[pos + 22:pos + 26] = struct.pack("<I", 0)  # CRC
        pos += 27 + segments + body
    return bytes(out)


def clip_files(event) -> dict[str, bytes]:
    return {k: Path(v).read_bytes() for k, v in event.result["files"].items()}


async def wait_until_acked(q: CeleryQueue, job_ids: set[str], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while unacked_ids(q.redis) & job_ids:
        if time.monotonic() > deadline:
            raise AssertionError(f"never acknowledged: {unacked_ids(q.redis) & job_ids}")
        await asyncio.sleep(0.1)


def test_waiting_jobs_share_a_batch_a_bad_one_in_it_fails_alone_and_clips_match_composing_each_alone(
        tmp_path: Path, redis_server: RedisServer, workers: Workers, tiny_checkpoint: Path) -> None:
    h = content_hash(tiny_checkpoint)
    reqs = {"a": {"seed": 11}, "b": {"seed": 12, "seconds": 8}, "c": {"seed": 13, "tempo": 150}}

    async def go() -> None:
        settings = bot_settings(tmp_path, redis_server.url, {"jazz": tiny_checkpoint}, JOB_TIMEOUT_S)
        async with running(settings) as (q, rec):
            with only_consumer(redis_server.url, workers.procs[0], workers.procs):
                for job_id, req in reqs.items():
                    await q.submit(item(tmp_path, job_id, h, **req))
                # a seed file is read in the batch (`Composer.compose_many`), not when the job arrives
                await q.submit(item(tmp_path, "bad", h, seed_midi=b"MThd, then nothing a MIDI file has"))
                await rec.wait(*reqs, "bad")
            await wait_until_acked(q, {*reqs, "bad"})
            for job_id, req in reqs.items():  # the same requests and seeds, each alone
                await q.submit(item(tmp_path, f"{job_id}-alone", h, **req))
                await rec.wait(f"{job_id}-alone", linger=0)
            await rec.wait(*reqs, "bad", linger=1.0)
        [bad] = rec.finished("bad")
        assert bad.kind == "failed" and "damaged or truncated" in bad.error
        batched = {j: rec.finished(j) for j in reqs}
        assert all([e.kind for e in ends] == ["done"] for ends in batched.values()), batched
        done = {j: ends[0] for j, ends in batched.items()}
        assert {e.result["worker"]["batch"] for e in done.values()} == {4}  # the bad job was in the batch too
        assert len({e.result["timings"]["sample"] for e in done.values()}) == 1  # sampled together
        assert {"composing", "rendering"} <= set(rec.stages("a"))
        for job_id, batched_end in done.items():
            [alone] = rec.finished(f"{job_id}-alone")
            assert alone.kind == "done" and alone.result["worker"]["batch"] == 1
            mine, theirs = clip_files(batched_end), clip_files(alone)
            assert mine["midi"] == theirs["midi"], job_id
            assert ogg_without_serial(mine["audio"]) == ogg_without_serial(theirs["audio"]), job_id

    run(go())
    client = redis_server.client()
    assert all(int(client.get(ATTEMPTS_KEY + j)) == 1 for j in reqs)  # each composed once


class BrokenOnce:
    """A composer whose first batch meets a bug (a stand-in: no real part fails like this on demand);
    later batches yield each request's seed."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    def compose_many(self, jobs):
        self.batches.append([req for req, _, _ in jobs])
        if len(self.batches) == 1:
            raise RuntimeError("a bug")
        yield from (FakeClip(req) for req, _, _ in jobs)


class FakeClip:
    def __init__(self, seed: int) -> None:
        self.summary = {"checkpoint_hash": ""}
        self.audio = self.midi = self.picture = b"x"
        self.written = b"{}"  # the clip as written (its lead sheet's notes), as `ComposeResult` carries it
        self.seed = seed

    def to_payload(self) -> dict:
        return {"seed": self.seed}


class SerialPipeline:
    """A stand-in for `engine.compose.pipeline.Pipeline` over a fake composer: each batch on its own thread,
    delivered in order; an exception while composing goes to every job not yet delivered."""

    def __init__(self, composer: BrokenOnce) -> None:
        self.composer = composer

    def submit(self, jobs, deliver, sampled=None, stop=None, stops=None) -> None:
        def go() -> None:
            done = 0
            try:
                for done, outcome in enumerate(self.composer.compose_many(jobs), 1):
                    deliver(done - 1, outcome)
            except Exception as exc:
                for index in range(done, len(jobs)):
                    deliver(index, exc)
            if sampled is not None:
                sampled()

        threading.Thread(target=go, daemon=True).start()

    def close(self, wait: bool = True) -> None:
        pass


def test_a_bug_in_a_batch_fails_that_batch_alone_and_jobs_arriving_in_the_window_share_one() -> None:
    composer = BrokenOnce()
    batcher = Batcher(lambda: composer, lambda jobs: (60.0, 70.0), lambda jobs: None, 6.0,
                      batch_max=3, window_s=30.0, lanes=1, info={"node": "n"}, pipeline=SerialPipeline)
    try:
        def job(i: int) -> BatchJob:
            return BatchJob(f"j{i}", i, Path("ck"), "", lambda stage: None, time.time())

        with ThreadPoolExecutor(6) as pool:
            first = [pool.submit(batcher.submit, job(i)) for i in range(3)]  # a full batch starts at once
            assert [f.result(timeout=60) for f in first] == [{"error": policy.INTERNAL_ERROR}] * 3
            second = [pool.submit(batcher.submit, job(i)) for i in range(3, 6)]
            outs = [f.result(timeout=60) for f in second]
        assert [o["result"]["seed"] for o in outs] == [3, 4, 5] and {o["worker"]["batch"] for o in outs} == {3}
        assert composer.batches == [[0, 1, 2], [3, 4, 5]]
    finally:
        batcher.stop()


class WatchingPipeline:
    """A stand-in pipeline whose job for request 0 runs until its own stop event is set (a long
    render); the others finish at once."""

    def __init__(self, _composer) -> None:
        pass

    def submit(self, jobs, deliver, sampled=None, stop=None, stops=None) -> None:
        def go() -> None:
            if sampled is not None:
                sampled()
            for i, (req, _, _) in enumerate(jobs):
                if req == 0:
                    deliver(i, Stopped("the job was stopped") if stops[i].wait(30) else FakeClip(req))
                else:
                    deliver(i, FakeClip(req))

        threading.Thread(target=go, daemon=True).start()

    def close(self, wait: bool = True) -> None:
        pass


def test_a_job_revoked_in_flight_is_stopped_alone() -> None:
    """An admin's cancel revokes the task; the worker's lane sees the revoke and stops that job
    (its task returns the stop), the rest of its batch goes on."""
    batcher = Batcher(lambda: None, lambda jobs: (60.0, 70.0), lambda jobs: None, 6.0, batch_max=2, window_s=30.0,
                      lanes=1, info={"node": "n"}, pipeline=WatchingPipeline, revoked=lambda job_id: job_id == "j0")
    try:
        with ThreadPoolExecutor(2) as pool:
            outs = [pool.submit(batcher.submit, BatchJob(f"j{i}", i, Path("ck"), "", lambda stage: None, time.time()))
                    for i in range(2)]
            first, second = (f.result(timeout=60) for f in outs)
        assert first == {"error": "the job was stopped"}
        assert second["result"]["seed"] == 1
    finally:
        batcher.stop()


def test_a_worker_killed_mid_batch_has_every_unfinished_job_redelivered_and_each_delivered_once(
        tmp_path: Path, redis_server: RedisServer, workers: Workers, tiny_checkpoint: Path) -> None:
    h = content_hash(tiny_checkpoint)
    _, _, visibility = time_limits(JOB_TIMEOUT_S, BATCH_MAX)
    ids = [f"k{i}" for i in range(BATCH_MAX)]

    async def go() -> None:
        settings = bot_settings(tmp_path, redis_server.url, {"jazz": tiny_checkpoint}, JOB_TIMEOUT_S)
        async with running(settings) as (q, rec):
            with only_consumer(redis_server.url, workers.procs[0], workers.procs):
                for i, job_id in enumerate(ids):
                    await q.submit(item(tmp_path, job_id, h, seconds=16, seed=100 + i))
                while True:  # wait until one worker composes all four in one batch, then kill it
                    metas = [task_meta(q, j) for j in ids]
                    if all(m.get("status") == "PROGRESS" and m["result"]["stages"] for m in metas):
                        break
                    await asyncio.sleep(0.05)
                victim, pid = metas[0]["result"]["worker"], metas[0]["result"]["pid"]
                assert {m["result"]["pid"] for m in metas} == {pid}
                # late acks: the messages of a batch being composed are all still unacknowledged
                assert unacked_ids(q.redis) >= set(ids)
                [row] = [r for r in (await q.status()).workers if r.name == victim]
                assert set(ids) <= set(row.jobs)  # the heartbeat tells what the batch runs
            os.kill(pid, signal.SIGKILL)
            finished_before = {j for j in ids if task_meta(q, j).get("status") == "SUCCESS"}
            await rec.wait(*ids, timeout=visibility + 90, linger=2.0)
            await wait_until_acked(q, set(ids))
        assert finished_before != set(ids)  # killed mid-batch
        for job_id in ids:
            ends = rec.finished(job_id)
            assert [e.kind for e in ends] == ["done"], (job_id, rec.of(job_id))
            assert Path(ends[0].result["files"]["audio"]).is_file()
            if job_id not in finished_before:
                assert ends[0].result["worker"]["node"] != victim and "retrying" in rec.stages(job_id)

    run(go())
    assert len(workers.alive()) == 1


def test_batch_max_1_turns_batching_off(tmp_path: Path, redis_server: RedisServer, workers: Workers,
                                        tiny_checkpoint: Path) -> None:
    h = content_hash(tiny_checkpoint)
    solo = Workers(tmp_path / "solo", redis_server.url, job_timeout_s=JOB_TIMEOUT_S, CHORUS_BATCH_MAX="1")
    (tmp_path / "solo").mkdir()
    try:
        solo.start(1)

        async def go() -> None:
            settings = bot_settings(tmp_path, redis_server.url, {"jazz": tiny_checkpoint}, JOB_TIMEOUT_S)
            async with running(settings) as (q, rec):
                with only_consumer(redis_server.url, solo.procs[0], [*solo.procs, *workers.procs]):
                    for i in range(3):
                        await q.submit(item(tmp_path, f"s{i}", h, seed=200 + i))
                    await rec.wait("s0", "s1", "s2")
            ends = [rec.finished(f"s{i}") for i in range(3)]
            assert all([e.kind for e in end] == ["done"] for end in ends), ends
            assert {end[0].result["worker"]["batch"] for end in ends} == {1}
            assert {end[0].result["worker"]["node"] for end in ends} == {node_of(solo.procs[0])}

        run(go())
        assert "pool solo" in (tmp_path / "solo" / "worker-0.log").read_text()
    finally:
        solo.close()


class StuckPipeline:
    """A stand-in pipeline whose batches with a seed under 100 never finish by themselves: each waits
    for its stop event (a render that honours it) or, with ``honour_stop`` off, forever (stuck in
    native code). Other batches are delivered at once."""

    def __init__(self, honour_stop: bool) -> None:
        self.honour_stop = honour_stop

    def __call__(self, composer: object) -> StuckPipeline:
        return self

    def submit(self, jobs, deliver, sampled=None, stop=None, stops=None) -> None:
        def go() -> None:
            if sampled is not None:
                sampled()
            if jobs[0][0] < 100:
                if not self.honour_stop:
                    return
                stop.wait()
                for index in range(len(jobs)):
                    deliver(index, EngineError("the job was stopped"))
                return
            for index, (req, _, _) in enumerate(jobs):
                deliver(index, FakeClip(req))

        threading.Thread(target=go, daemon=True).start()

    def close(self, wait: bool = True) -> None:
        pass


@pytest.mark.parametrize("honour_stop", [True, False])
def test_a_batch_past_its_soft_limit_fails_with_the_timeout_and_past_the_hard_limit_calls_the_handler(
        honour_stop: bool) -> None:
    hard_calls: list[list[str]] = []
    batcher = Batcher(lambda: None, lambda jobs: (0.5 * jobs, 0.5 * jobs + 1.0),
                      lambda jobs: hard_calls.append([j.job_id for j in jobs]), 6.0, batch_max=2, window_s=0.2,
                      lanes=1, info={"node": "n"}, pipeline=StuckPipeline(honour_stop))
    try:
        def job(i: int) -> BatchJob:
            return BatchJob(f"j{i}", i, Path("ck"), "", lambda stage: None, time.time())

        with ThreadPoolExecutor(4) as pool:
            stuck = [pool.submit(batcher.submit, job(i)) for i in range(2)]
            assert [f.result(timeout=30) for f in stuck] == [{"error": policy.timeout_message(6.0)}] * 2
            after = [pool.submit(batcher.submit, job(i)) for i in (100, 101)]  # the worker goes on
            assert [f.result(timeout=30)["result"]["seed"] for f in after] == [100, 101]
        time.sleep(1.5)  # past the stuck batch's hard limit
        assert hard_calls == ([] if honour_stop else [["j0", "j1"]])
    finally:
        batcher.stop()
