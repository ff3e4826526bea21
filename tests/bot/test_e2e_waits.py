"""End to end, through the real `chorus serve` and the stand-in: honest waits (issue 14, part 3).

A queued request says its place and about how long it will be, kept up to date while it waits; past ``CHORUS_MAX_WAIT_S`` a request
is refused with the estimate, in one ephemeral line, and nothing of it is written; accepted work
still arrives; once clips have been timed, the estimate is no longer a guess.
"""
from __future__ import annotations

import asyncio
import re
import sqlite3
from pathlib import Path

import pytest

from tests.bot.harness import Harness

pytestmark = pytest.mark.slow  # real processes end to end: `make test-fast` leaves these out

QUEUED = re.compile(r"⏳ Queued your jazz clip \((next up|position (\d+) in the queue), about \d+ (s|min)( at a guess)?\)\.")
REFUSED = re.compile(r"⚠️ the queue is about \d+ (s|min) long right now; try again later")


def answer(h: Harness, rec) -> tuple[str, bool]:
    """The first answer's text and whether it was private."""
    data = h.wait(interaction=rec, kind="callback")["json"].get("data", {})
    return data.get("content", ""), bool(data.get("flags", 0) & 64)


def jobs_written(h: Harness) -> int:
    with sqlite3.connect(h.tmp / "chorus.db") as db:
        return db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]


def test_queued_requests_show_their_wait_and_a_long_queue_refuses_with_it(tmp_path: Path, tiny_checkpoint: Path) -> None:
    # 1 worker, 10 s a clip at a guess, at most 45 s: four open jobs are accepted (40 s), a fifth is not (50 s);
    # the worker times no clip as it starts (CHORUS_WARM_STYLES=0), so the guess stands until jobs are timed
    h = Harness(tmp_path, {"jazz": tiny_checkpoint}, CHORUS_MAX_WAIT_S="45", CHORUS_WAIT_PRIOR_S="10",
                CHORUS_WARM_STYLES="0")
    try:
        h.start_bot()

        async def burst():
            return await asyncio.gather(*[h.standin.send_slash_command(
                "compose", [{"name": "style", "value": "jazz"}, {"name": "length", "value": "60s"}], user)
                for user in h.users])

        recs = h.lt.run(burst())
        answers = [(rec, *answer(h, rec)) for rec in recs]
        accepted = [(rec, text) for rec, text, private in answers if not private]
        refused = [text for _, text, private in answers if private]
        assert all(QUEUED.fullmatch(text) for _, text in accepted), [t for _, t in accepted]
        assert any("position" in text for _, text in accepted), [t for _, t in accepted]  # "position 2 …, about …"
        assert refused and all(REFUSED.fullmatch(text) for text in refused), refused
        assert jobs_written(h) == len(accepted)  # a refused request leaves nothing behind
        for rec, _ in accepted:
            assert len(h.clip_of(rec, timeout=180)["files"]) == 3
        assert all(h.clips_seen(rec) == 0 for rec, _, private in answers if private)

        # the finished jobs were timed: the next estimate is a measurement, not a guess
        rec = h.compose(h.users[0], length="10s")
        text, private = answer(h, rec)
        assert not private and QUEUED.fullmatch(text) and "at a guess" not in text, text
        assert len(h.clip_of(rec)["files"]) == 3
    finally:
        h.close()


def test_a_waiting_request_sees_its_place_move_up_and_no_queued_text_after_its_clip(tmp_path: Path,
                                                                                    tiny_checkpoint: Path) -> None:
    # one job at a time (no batches), housekeeping every 0.2 s: each step of the queue reaches the messages
    h = Harness(tmp_path, {"jazz": tiny_checkpoint}, CHORUS_BATCH_MAX="1", CHORUS_DELIVERY_RETRY_S="0.2")
    try:
        h.start_bot()
        recs = [h.compose(user, length="60s") for user in h.users[:4]]
        first = [answer(h, rec)[0] for rec in recs]
        places = [QUEUED.fullmatch(text) for text in first]
        assert all(places), first
        last = recs[-1]
        assert places[-1].group(2) == "4", first[-1]  # three ahead of it, none started when it was accepted

        def moved_up(e: dict) -> bool:
            m = QUEUED.fullmatch((e["json"] or {}).get("content", ""))
            return e["kind"] == "edit" and m is not None and (m.group(2) is None or int(m.group(2)) < 4)

        h.wait(90, interaction=last, predicate=moved_up)  # its message moved up while it waited
        for rec in recs:
            h.clip_of(rec, timeout=180)
        h.clip_of(h.compose(h.users[4], length="10s"))  # many housekeeping rounds after the four clips
        for rec in recs:  # once a clip is in, nothing edited its message back into "queued"
            edits = [e for e in h.responses(rec) if e["kind"] == "edit"]
            clip_at = next(i for i, e in enumerate(edits) if len(e["files"]) >= 3)
            assert not any("Queued" in (e["json"] or {}).get("content", "") for e in edits[clip_at:])
    finally:
        h.close()
