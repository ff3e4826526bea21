"""End to end, seed uploads: /compose with a seed defers publicly at once, checks the limits before
downloading, downloads with a cap, checks the file in a small pool, and keeps refusals private."""
from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import pytest

from tests.bot.harness import Harness
from tests.helpers import combo_midi, heavy_seed_midi

pytestmark = pytest.mark.slow  # real processes end to end: `make test-fast` leaves these out

EPHEMERAL = 64
THINKING = 5  # the "deferred channel message" callback
TWENTY_MIB = 20 * 1024 * 1024
CAP = 1_048_576  # CHORUS_MAX_SEED_BYTES' default


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path):
    h = Harness(tmp_path_factory.mktemp("bot"), {"jazz": tiny_checkpoint}, CHORUS_USER_COOLDOWN_S="3600",
                CHORUS_MAX_QUEUE="60")
    h.start_bot()
    yield h
    h.close()


def seeded(h: Harness, user: dict, attachment: dict, length: str = "6s"):
    options = [{"name": "style", "value": "jazz"}, {"name": "length", "value": length}]
    return h.lt.run(h.standin.send_slash_command("compose", options, user, attachments={"seed_midi": attachment}))


def private_refusal(h: Harness, rec) -> str:
    """After a public "thinking" defer: the loading message deleted, then one ephemeral line, all
    the user sees."""
    callback = h.wait(interaction=rec, kind="callback")
    assert callback["json"]["type"] == THINKING and not callback["json"].get("data", {}).get("flags", 0) & EPHEMERAL
    follow = h.wait(interaction=rec, kind="followup")
    deletes = [e for e in h.responses(rec) if e["kind"] == "delete" and e["time"] <= follow["time"]]
    assert deletes and deletes[0]["path"].endswith("/messages/@original") and deletes[0]["status"] == 204
    (message,) = h.standin.messages_for(rec)
    assert message["flags"] & EPHEMERAL and "\n" not in message["content"]
    return message["content"]


def downloads_of(h: Harness, attachment: dict) -> list[dict]:
    return [e for e in h.standin.events if e["kind"] == "download" and attachment["id"] in e["path"]]


def test_a_seeded_clip_is_delivered_by_editing_the_status_message(harness: Harness) -> None:
    user = harness.standin.add_user("seeder")
    rec = seeded(harness, user, harness.standin.add_attachment("tune.mid", combo_midi()), length="10s")
    clip = harness.clip_of(rec)
    assert rec.callback_type == THINKING and rec.ack_seconds is not None and rec.ack_seconds < 3.0
    queued = harness.wait(interaction=rec, kind="edit", predicate=lambda e: "Queued" in e["json"].get("content", ""))
    assert queued["path"].endswith("/messages/@original") and queued["json"]["content"].startswith("⏳ Queued your jazz")
    assert clip["kind"] == "edit"
    fields = {f["name"]: f["value"] for f in clip["json"]["embeds"][0]["fields"]}
    assert fields["Continuation"] == "the new music starts at bar 5 of the clip"
    (message,) = harness.standin.messages_for(rec)  # the loading message became the clip
    assert message["id"] == rec.original_id and not message["flags"] & EPHEMERAL
    assert harness.clips_seen(rec) == 1


def test_a_refusal_after_the_defer_is_private_and_the_loading_message_is_gone(harness: Harness) -> None:
    user = harness.standin.add_user("png-sender")
    rec = seeded(harness, user, harness.standin.add_attachment("song.mid", b"\x89PNG\r\n\x1a\n" + bytes(200)))
    assert private_refusal(harness, rec) == "⚠️ this is not a MIDI file"
    cut = seeded(harness, user, harness.standin.add_attachment("cut.mid", combo_midi()[:150]))
    assert private_refusal(harness, cut) == "⚠️ this MIDI file is damaged or truncated"


def test_a_user_over_the_limits_is_refused_before_the_download(harness: Harness) -> None:
    user = harness.standin.add_user("impatient")
    first = harness.compose(user, length="6s")  # accepted; the hour-long cooldown starts
    harness.wait(interaction=first, kind="callback")
    attachment = harness.standin.add_attachment("tune.mid", combo_midi())
    rec = seeded(harness, user, attachment)
    assert private_refusal(harness, rec).startswith("⚠️ slow down: you can compose again in")
    assert downloads_of(harness, attachment) == []


def test_a_file_that_claims_100_bytes_but_is_20_mib_is_refused_without_reading_past_the_cap(harness: Harness) -> None:
    user = harness.standin.add_user("liar")
    attachment = harness.standin.add_attachment("big.mid", b"MThd" + bytes(TWENTY_MIB - 4), size=100)
    rec = seeded(harness, user, attachment)
    assert private_refusal(harness, rec) == f"⚠️ the MIDI file is {TWENTY_MIB:,} bytes; at most {CAP:,} are accepted"
    (download,) = downloads_of(harness, attachment)
    assert download["served"] < TWENTY_MIB  # the bot hung up rather than read it all
    read = [int(n) for n in re.findall(r"seed download refused: .*?(\d+) bytes read", harness.bot_log())]
    assert read and read[-1] <= CAP + 1
    # a file whose declared size is over the limit is refused at once, privately, with no download
    honest = harness.standin.add_attachment("huge.mid", b"MThd" + bytes(CAP), size=CAP + 4)
    rec = seeded(harness, user, honest)
    callback = harness.wait(interaction=rec, kind="callback")
    assert callback["json"]["type"] == 4 and callback["json"]["data"]["flags"] & EPHEMERAL
    assert "at most 1,048,576 are accepted" in callback["json"]["data"]["content"]
    assert downloads_of(harness, honest) == []


def test_twenty_users_uploading_heavy_seeds_at_once_are_all_acknowledged_in_time(harness: Harness) -> None:
    seed = heavy_seed_midi()
    assert 350_000 < len(seed) < 370_000
    users = [harness.standin.add_user(f"burst{i}") for i in range(20)]
    options = [{"name": "style", "value": "jazz"}, {"name": "length", "value": "6s"}]

    async def burst():
        attachments = [harness.standin.add_attachment("heavy.mid", seed) for _ in users]
        return await asyncio.gather(*[harness.standin.send_slash_command(
            "compose", options, u, attachments={"seed_midi": a}) for u, a in zip(users, attachments, strict=True)])

    recs = harness.lt.run(burst())
    for rec in recs:
        harness.wait(interaction=rec, kind="callback")
    acks = sorted(r.ack_seconds for r in recs if r.ack_seconds is not None)
    assert len(acks) == 20 and acks[-1] < 3.0, acks
    assert all(r.callback_type == THINKING for r in recs)
    deadline = time.monotonic() + 240  # every valid heavy seed is then accepted, however long the queue
    for rec in recs:
        e = harness.wait(max(1.0, deadline - time.monotonic()), interaction=rec, kind="edit")
        assert e["json"]["content"].startswith("⏳ Queued your jazz clip"), e["json"]
