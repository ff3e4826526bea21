"""End to end, the buttons under a clip: each press is a new request with /compose's limits,
charged to whoever pressed; the buttons outlive a restart, and so does the Continue modal; Cancel is
for the owner of a queued job."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.bot.harness import Harness, clip_message, press, sheet_files
from tests.bot.standin_components import buttons
from tests.helpers import combo_midi

pytestmark = pytest.mark.slow  # real processes end to end: `make test-fast` leaves these out

EPHEMERAL = 64


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path):
    h = Harness(tmp_path_factory.mktemp("bot"), {"jazz": tiny_checkpoint}, CHORUS_USER_MAX_PENDING="1",
                CHORUS_BATCH_MAX="1")  # a queued job waits alone: Cancel has time to act
    h.start_bot()
    yield h
    h.close()


def fields_of(clip: dict) -> dict[str, str]:
    return {f["name"]: f["value"] for f in clip["json"]["embeds"][0]["fields"]}


def ephemeral_line(h: Harness, rec) -> str:
    data = h.wait(interaction=rec, kind="callback")["json"].get("data", {})
    assert data.get("flags", 0) & EPHEMERAL, f"not ephemeral: {data}"
    assert "\n" not in data["content"]
    return data["content"]


def job_status(h: Harness, job_id: str) -> tuple[str, str | None]:
    with sqlite3.connect(h.tmp / "chorus.db") as db:
        return db.execute("SELECT status, error FROM jobs WHERE id = ?", (job_id,)).fetchone()


@pytest.fixture(scope="module")
def first(harness: Harness) -> dict:
    """A delivered clip with chosen changes, tempo and temperature, to jam on."""
    rec = harness.compose(harness.users[0], length="10s", seed=7, tempo=160.0, temperature=0.9,
                          changes="Dm7 G7 Cmaj7 A7")
    return clip_message(harness, rec)


CLIP_BUTTONS = {"Another take", "Continue", "Variation", "Sheet"}


def test_a_clip_has_four_buttons_and_a_full_reproduce_line(harness: Harness, first: dict) -> None:
    assert set(buttons(first)) == CLIP_BUTTONS
    footer = first["embeds"][0]["footer"]["text"]
    assert "seed:7" in footer and "tempo:160" in footer and "temperature:0.9" in footer and "changes:Dm7" in footer


def test_another_take_is_the_same_request_with_a_new_seed(harness: Harness, first: dict) -> None:
    rec = press(harness, first, "Another take", harness.users[0])
    assert rec.ack_seconds is None or rec.ack_seconds < 3.0
    fields = fields_of(harness.clip_of(rec))
    assert "`7`" not in fields["Seed"] and "160" in fields["Tempo"]
    assert harness.clips_seen(rec) == 1
    assert set(buttons(clip_message(harness, rec))) == CLIP_BUTTONS


def test_continue_picks_up_from_the_clip_at_its_tempo(harness: Harness, first: dict) -> None:
    rec = press(harness, first, "Continue", harness.users[0])
    fields = fields_of(harness.clip_of(rec))
    assert fields["Continuation"].startswith("the new music starts at bar ") and "160" in fields["Tempo"]
    assert fields["Checkpoint"] == fields_of({"json": first})["Checkpoint"]
    assert harness.clips_seen(rec) == 1


def test_variation_keeps_the_changes_with_a_new_melody(harness: Harness, first: dict) -> None:
    rec = press(harness, first, "Variation", harness.users[0])
    fields, before = fields_of(harness.clip_of(rec)), fields_of({"json": first})
    assert fields["Changes"] == before["Changes"] and fields["Seed"] != before["Seed"]
    assert harness.clips_seen(rec) == 1


def test_anyone_may_jam_on_a_clip_charged_to_their_own_limits(harness: Harness, first: dict) -> None:
    jammer = harness.users[1]
    rec = press(harness, first, "Another take", jammer)
    again = press(harness, first, "Variation", jammer)  # while the first press is still pending
    assert ephemeral_line(harness, again).startswith("⚠️ you already have a request in the queue")
    clip = harness.clip_of(rec)
    assert f"<@{jammer['id']}>" in clip["json"]["content"] and harness.clips_seen(rec) == 1
    assert harness.clips_seen(again) == 0


def test_continue_on_a_pruned_clip_is_refused(harness: Harness) -> None:
    message = clip_message(harness, harness.compose(harness.users[2], length="6s"))
    job_id = buttons(message)["Continue"]["custom_id"].rsplit(":", 1)[1]
    with sqlite3.connect(harness.tmp / "chorus.db") as db:  # as retention leaves it: files gone, row kept
        db.execute("UPDATE jobs SET pruned_at = 1 WHERE id = ?", (job_id,))
    rec = press(harness, message, "Continue", harness.users[2])
    assert "removed by the retention policy" in ephemeral_line(harness, rec)


def test_cancel_is_for_the_owner_of_a_queued_request(harness: Harness) -> None:
    long = harness.compose(harness.users[3], length="3m")  # the one worker takes this, one job at a time
    owner, other = harness.users[4], harness.users[5]
    queued = harness.compose(owner, length="6s")
    harness.wait(interaction=queued, kind="callback")
    (status,) = harness.standin.messages_for(queued)
    assert status["content"].startswith("⏳ Queued") and set(buttons(status)) == {"Cancel"}
    job_id = buttons(status)["Cancel"]["custom_id"].rsplit(":", 1)[1]
    refused = press(harness, status, "Cancel", other)
    assert "only the person who asked" in ephemeral_line(harness, refused)
    rec = press(harness, status, "Cancel", owner)
    harness.wait(interaction=rec, kind="callback")
    assert rec.callback_type == 7  # the status message itself now says so
    (shown,) = harness.standin.messages_for(queued)
    assert shown["content"].startswith("🚫 Cancelled") and shown["components"] == []
    assert job_status(harness, job_id) == ("failed", "cancelled by its owner")
    harness.clip_of(long, timeout=240)  # the queue goes on; the cancelled job never runs
    harness.wait_for_log(f"job {job_id} cancelled by its owner")
    assert harness.clips_seen(queued) == 0 and job_status(harness, job_id)[0] == "failed"
    assert not any(e["kind"] == "edit" and "Composing" in (e["json"] or {}).get("content", "")
                   for e in harness.responses(queued))


def test_the_buttons_work_after_a_restart(harness: Harness, first: dict) -> None:
    harness.stop_bot()
    harness.start_bot()
    for label, user in (("Another take", harness.users[0]), ("Continue", harness.users[1]),
                        ("Variation", harness.users[2])):  # one DynamicItem class serves every button, Cancel too
        rec = press(harness, first, label, user)
        assert len(harness.clip_of(rec)["files"]) == 3 and harness.clips_seen(rec) == 1, label


def test_a_continue_modal_opened_before_a_restart_is_answered_after_it(harness: Harness) -> None:
    att = harness.standin.add_attachment("posted.mid", combo_midi())
    message = harness.standin.add_message(None, harness.users[1], "my tune", attachments=[att])
    deleted = harness.standin.add_message(None, harness.users[1], "my other tune",
                                          attachments=[harness.standin.add_attachment("other.mid", combo_midi())])
    user = harness.users[5]
    menu = harness.lt.run(harness.standin.send_message_command("Continue with Chorus", message, user))
    gone = harness.lt.run(harness.standin.send_message_command("Continue with Chorus", deleted, user))
    harness.wait(interaction=menu, kind="callback")
    harness.wait(interaction=gone, kind="callback")
    assert menu.callback_type == 9 and gone.callback_type == 9  # the modals are open on the member's screen
    harness.kill_bot()
    harness.start_bot()
    del harness.standin.messages[deleted["id"]]  # its author deleted it meanwhile
    rec = harness.lt.run(harness.standin.submit_modal(gone, {}, user))
    assert "the message with that MIDI file is gone" in ephemeral_line(harness, rec)
    tempo = "Tempo in bpm (blank: keep the file's)"
    bad = harness.lt.run(harness.standin.submit_modal(menu, {tempo: "fast"}, user))
    assert "tempo 'fast' is not a number" in ephemeral_line(harness, bad)  # what was typed is read, after the restart
    rec = harness.lt.run(harness.standin.submit_modal(menu, {"Length (e.g. 30s, 1m)": "10s", tempo: "100"}, user))
    fields = fields_of(harness.clip_of(rec))
    assert fields["Continuation"] == "the new music starts at bar 5 of the clip" and "100" in fields["Tempo"]
    assert harness.clips_seen(rec) == 1


def chord_symbols(musicxml: bytes) -> list[str]:
    """The chord symbols of a MusicXML file as written: root, alteration and the kind's text."""
    import xml.etree.ElementTree as ET

    out = []
    for h in ET.fromstring(musicxml).iter("harmony"):
        alter = {"-1": "b", "1": "#"}.get(h.findtext("root/root-alter", "0"), "")
        out.append(h.findtext("root/root-step") + alter + h.find("kind").get("text", ""))
    return out


def test_the_sheet_button_posts_the_lead_sheet_of_a_clip_from_before_a_restart(harness: Harness, first: dict) -> None:
    harness.stop_bot()
    harness.start_bot()  # `first` was posted by the bot before this one
    rec = press(harness, first, "Sheet", harness.users[3])
    files = sheet_files(harness, rec)
    assert set(files) == {"png", "musicxml"} and files["png"].startswith(b"\x89PNG")
    assert chord_symbols(files["musicxml"])[:4] == ["Dm7", "G7", "Cmaj7", "A7"]  # the changes the clip was asked for, in order
    again = press(harness, first, "Sheet", harness.users[4])  # set once: the second press posts the same files
    assert sheet_files(harness, again) == files
    harness.wait_for_log("lead sheet set")
    assert harness.bot_log().count("lead sheet set") == 1
