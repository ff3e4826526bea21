"""End to end through Celery: the real bot process (``CHORUS_QUEUE=celery``), a redis-server, a
`chorus worker` process with an empty checkpoints folder (the checkpoint reaches it through
Redis, as it would on another machine), and the unmodified discord.py client against the stand-in.
A clip's Sheet button is set by that worker too."""
from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from bot.queues.celery.app import ATTEMPTS_KEY
from bot.queues.celery.parts import RedisServer, Workers
from engine.media.render import probe
from tests.bot.harness import Harness, clip_message, press, sheet_files

pytestmark = pytest.mark.slow  # real processes end to end: `make test-fast` leaves these out


class Stack:
    def __init__(self, tmp: Path, tiny_checkpoint: Path) -> None:
        self.redis = RedisServer(tmp)
        self.redis.start()
        (tmp / "workers").mkdir()
        self.workers = Workers(tmp / "workers", self.redis.url, CHORUS_SAMPLER="numpy")
        self.harness = Harness(tmp / "bot", {"jazz": tiny_checkpoint}, CHORUS_QUEUE="celery",
                               CHORUS_REDIS_URL=self.redis.url, CHORUS_USER_MAX_PENDING="3")

    def close(self) -> None:
        try:
            self.harness.close()
        finally:
            self.workers.close()
            self.redis.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path):
    s = Stack(tmp_path_factory.mktemp("celery-e2e"), tiny_checkpoint)
    try:
        s.workers.start(1)
        s.harness.start_bot()
        yield s
    finally:
        s.close()


def callback_text(h: Harness, rec) -> str:
    return h.wait(interaction=rec, kind="callback")["json"].get("data", {}).get("content", "")


def test_compose_is_delivered_through_celery(stack: Stack) -> None:
    h = stack.harness
    rec = h.compose(h.users[0], length="10s", seed=7, tempo=160.0)
    clip = h.clip_of(rec)
    assert rec.ack_seconds is not None and rec.ack_seconds < 3.0
    names = {f["filename"].rsplit(".", 1)[-1]: f["data"] for f in clip["files"]}  # chorus-jazz-F-160bpm-….ogg
    assert set(names) == {"ogg", "mid", "png"}
    assert all(f["filename"].startswith("chorus-jazz-") and "-160bpm-" in f["filename"] for f in clip["files"])
    info = probe(names["ogg"], "ogg")
    assert info.codec == "vorbis" and abs(info.duration_s - 10) <= 1.5 + 3.0 + 2.0  # a bar at 160 bpm, the final chord held 3 s, the 2 s tail
    assert names["mid"][:4] == b"MThd" and names["png"][:4] == b"\x89PNG"
    fields = {f["name"]: f["value"] for f in clip["json"]["embeds"][0]["fields"]}
    assert fields["Style"] == "jazz" and fields["Checkpoint"].startswith("jazz ") and "`7`" in fields["Seed"]
    edits = [e["json"].get("content", "") for e in h.responses(rec) if e["kind"] == "edit"]
    assert any("Composing" in t for t in edits) and "your jazz clip" in edits[-1]
    assert h.clips_seen(rec) == 1


def test_a_bot_killed_with_jobs_in_celery_delivers_each_once_after_restart(stack: Stack) -> None:
    h = stack.harness

    async def fire():
        return await asyncio.gather(*[h.standin.send_slash_command(
            "compose", [{"name": "style", "value": "jazz"}, {"name": "length", "value": "8s"}], h.users[i])
            for i in range(1, 4)])

    recs = h.lt.run(fire())
    assert all(callback_text(h, r).startswith("⏳ Queued") for r in recs)
    h.kill_bot()  # the worker goes on; results wait in Redis
    h.start_bot()
    for rec in recs:
        h.clip_of(rec, timeout=120)
    time.sleep(2)
    assert [h.clips_seen(r) for r in recs] == [1, 1, 1]
    with sqlite3.connect(h.tmp / "chorus.db") as db:
        ids = [row[0] for row in db.execute("SELECT id FROM jobs")]
    client = stack.redis.client()
    assert all(int(client.get(ATTEMPTS_KEY + i) or 0) == 1 for i in ids)  # each composed once


def test_the_sheet_button_is_set_by_a_celery_worker(stack: Stack) -> None:
    h = stack.harness
    message = clip_message(h, h.compose(h.users[4], length="6s", seed=11))
    files = sheet_files(h, press(h, message, "Sheet", h.users[4]))
    assert set(files) == {"png", "musicxml"} and files["png"].startswith(b"\x89PNG")
    assert b"<score-partwise" in files["musicxml"] and b"<harmony" in files["musicxml"]
    with sqlite3.connect(h.tmp / "chorus.db") as db:
        (job_id,) = db.execute("SELECT id FROM jobs WHERE user_id = ?", (int(h.users[4]["id"]),)).fetchone()
    assert int(stack.redis.client().get(ATTEMPTS_KEY + job_id + "-sheet") or 0) == 1  # a Celery worker's task set it
    assert sheet_files(h, press(h, message, "Sheet", h.users[0])) == files  # then saved beside the clip: reused
    assert h.bot_log().count(f"job {job_id}: lead sheet set") == 1
