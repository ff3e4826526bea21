"""End to end under load and across a crash: limits hold and every accepted job arrives once."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from tests.bot.harness import WARM_LOG, Harness

pytestmark = pytest.mark.slow  # real processes end to end: `make test-fast` leaves these out


def callback_text(h: Harness, rec) -> tuple[str, bool]:
    e = h.wait(interaction=rec, kind="callback")
    data = e["json"].get("data", {})
    return data.get("content", ""), bool(data.get("flags", 0) & 64)


def clip_count(h: Harness, rec) -> int:
    return h.clips_seen(rec)


def burst(h: Harness, requests: list[tuple[dict, str]]) -> list:
    async def fire():
        return await asyncio.gather(*[h.standin.send_slash_command(
            "compose", [{"name": "style", "value": "jazz"}, {"name": "length", "value": length}], user)
            for user, length in requests])

    return h.lt.run(fire())


def test_thirty_concurrent_requests_respect_limits_and_arrive_exactly_once(tmp_path: Path, tiny_checkpoint: Path) -> None:
    h = Harness(tmp_path, {"jazz": tiny_checkpoint}, CHORUS_USER_MAX_PENDING="2", CHORUS_MAX_QUEUE="10")
    try:
        h.start_bot()
        recs = burst(h, [(h.users[i % 6], "20s") for i in range(30)])
        accepted, refused = [], []
        for rec in recs:
            text, ephemeral = callback_text(h, rec)
            if text.startswith("⏳ Queued"):
                assert not ephemeral
                accepted.append(rec)
            else:
                assert ephemeral and ("queue is full" in text or "already have 2 requests" in text), text
                refused.append(rec)
        assert len(accepted) == 10 and len(refused) == 20
        per_user: dict[str, int] = {}
        for rec in accepted:
            user = rec.payload["member"]["user"]["id"]
            per_user[user] = per_user.get(user, 0) + 1
        assert max(per_user.values()) <= 2
        for rec in accepted:
            h.clip_of(rec, timeout=180)
        time.sleep(2)
        assert [clip_count(h, r) for r in accepted] == [1] * len(accepted)
        assert all(clip_count(h, r) == 0 for r in refused)
    finally:
        h.close()


def test_a_fresh_bot_accepts_a_burst_of_fifty_it_can_serve(tmp_path: Path, tiny_checkpoint: Path) -> None:
    # a new database, nothing timed before: at the prior (10 s a clip) 50 open jobs would be 500 s, past the
    # 300 s limit, and 20 of them refused; the worker times a clip as it starts, and the estimate starts from that
    h = Harness(tmp_path, {"jazz": tiny_checkpoint}, CHORUS_WAIT_PRIOR_S="10", CHORUS_MAX_WAIT_S="300",
                CHORUS_MAX_QUEUE="50")
    try:
        users = [h.standin.add_user(f"burst{i}") for i in range(50)]
        h.start_bot()
        h.wait_for_log(WARM_LOG, timeout=120)
        recs = burst(h, [(user, "10s") for user in users])
        answers = [callback_text(h, rec) for rec in recs]
        assert [text for text, private in answers if private or not text.startswith("⏳ Queued")] == []
        assert not any("at a guess" in text for text, _ in answers)
        for rec in recs:
            h.clip_of(rec, timeout=300)
        assert [clip_count(h, r) for r in recs] == [1] * len(recs)
    finally:
        h.close()


def test_killing_the_bot_mid_queue_still_delivers_every_accepted_job(tmp_path: Path, tiny_checkpoint: Path) -> None:
    h = Harness(tmp_path, {"jazz": tiny_checkpoint}, CHORUS_USER_MAX_PENDING="3")
    try:
        h.start_bot()
        recs = burst(h, [(h.users[i % 3], "12s") for i in range(6)])
        assert all(callback_text(h, r)[0].startswith("⏳ Queued") for r in recs)
        h.clip_of(recs[0], timeout=120)  # one is out; the rest are queued or running
        h.kill_bot()
        delivered_before = sum(clip_count(h, r) for r in recs)
        assert delivered_before < len(recs)
        h.start_bot()
        for rec in recs:
            h.clip_of(rec, timeout=180)
        time.sleep(2)
        assert [clip_count(h, r) for r in recs] == [1] * len(recs)
        assert "recovered" in h.bot_log()
    finally:
        h.close()


@pytest.fixture(autouse=True)
def _no_leftover_processes():
    yield
