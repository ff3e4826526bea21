"""End to end: the real bot process, real worker processes, SQLite, FluidSynth and ffmpeg,
and the unmodified discord.py client talking to the local Discord stand-in."""
from __future__ import annotations

import io
import re
import sqlite3
import zipfile
from pathlib import Path

import pytest

from engine.media.render import probe
from tests.bot.harness import Harness, ephemeral_text
from tests.helpers import combo_midi

pytestmark = pytest.mark.slow  # real processes end to end: `make test-fast` leaves these out


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path, tiny_checkpoint_b: Path):
    h = Harness(tmp_path_factory.mktemp("bot"), {"jazz": tiny_checkpoint, "jazz-v2": tiny_checkpoint_b},
                CHORUS_USER_MAX_PENDING="3", CHORUS_SAMPLER="torch")  # the default sampler, end to end
    h.start_bot()
    yield h
    h.close()


def test_compose_is_acknowledged_in_time_and_delivers_audio_midi_and_picture(harness: Harness) -> None:
    rec = harness.compose(harness.users[0], length="30s", seed=7, tempo=160.0)
    clip = harness.clip_of(rec)
    assert rec.ack_seconds is not None and rec.ack_seconds < 3.0
    names = {f["filename"].rsplit(".", 1)[-1]: (f["filename"], f["data"]) for f in clip["files"]}
    assert set(names) == {"ogg", "mid", "png"}
    assert all(re.fullmatch(r"chorus-jazz-[A-G][bs]?m?-160bpm-\d{10}", name.rsplit(".", 1)[0])
               for name, _ in names.values()), names
    info = probe(names["ogg"][1], "ogg")
    assert info.codec == "vorbis" and abs(info.duration_s - 30) <= 1.5 + 3.0 + 2.0  # one bar at 160 bpm, the final chord held 3 s, the 2 s tail
    assert names["mid"][1][:4] == b"MThd" and names["png"][1][:4] == b"\x89PNG"
    embed = clip["json"]["embeds"][0]
    assert embed["image"]["url"] == f"attachment://{names['png'][0]}"
    fields = {f["name"]: f["value"] for f in embed["fields"]}
    assert fields["Style"] == "jazz" and fields["Checkpoint"].startswith("jazz ") and "`7`" in fields["Seed"]
    assert "160" in fields["Tempo"]
    # the public status message went queued -> composing -> rendering -> the clip itself
    edits = [e["json"].get("content", "") for e in harness.responses(rec) if e["kind"] == "edit"]
    assert any("Composing" in t for t in edits) and "your jazz clip" in edits[-1]
    assert harness.clips_seen(rec) == 1


def test_a_seed_upload_is_continued(harness: Harness) -> None:
    rec = harness.compose(harness.users[1], length="10s", attachment=("tune.mid", combo_midi()), seed=3)
    clip = harness.clip_of(rec)
    fields = {f["name"]: f["value"] for f in clip["json"]["embeds"][0]["fields"]}
    assert fields["Continuation"] == "the new music starts at bar 5 of the clip"
    assert "120" in fields["Tempo"]


def test_a_corrupt_upload_gets_an_ephemeral_line_and_the_next_user_is_served(harness: Harness) -> None:
    bad = harness.compose(harness.users[2], attachment=("song.mid", b"\x89PNG\r\n\x1a\n" + b"\0" * 200))
    text = ephemeral_text(harness, bad)
    assert "not a MIDI file" in text and "\n" not in text
    truncated = harness.compose(harness.users[2], attachment=("cut.mid", combo_midi()[:150]))
    assert "damaged or truncated" in ephemeral_text(harness, truncated)
    good = harness.compose(harness.users[3], length="6s")
    assert len(harness.clip_of(good)["files"]) == 3


def test_bad_values_get_specific_ephemeral_lines(harness: Harness) -> None:
    for opts, expected in [({"length": "10h"}, "allowed 5-180 s"), ({"style": "polka"}, "unknown style 'polka'"),
                           ({"tempo": 5.0}, "tempo 5 bpm"), ({"changes": "Dm7 Zz9"}, "'Zz9'")]:
        rec = harness.compose(harness.users[4], **{"length": "10s", **opts})
        assert expected in ephemeral_text(harness, rec)


def test_admin_commands_are_refused_to_members_and_swap_for_admins(harness: Harness) -> None:
    refused = harness.admin_command(harness.users[5], "use", style="jazz", checkpoint="jazz-v2")
    assert "for Chorus admins" in ephemeral_text(harness, refused)
    ok = harness.admin_command(harness.admin, "use", style="jazz", checkpoint="jazz-v2")
    assert "jazz now uses jazz-v2" in ephemeral_text(harness, ok)
    rec = harness.compose(harness.users[5], length="6s")
    fields = {f["name"]: f["value"] for f in harness.clip_of(rec)["json"]["embeds"][0]["fields"]}
    assert fields["Checkpoint"].startswith("jazz-v2 ")
    with sqlite3.connect(harness.tmp / "chorus.db") as db:
        rows = db.execute("SELECT user_id, action, allowed FROM audit_log ORDER BY id").fetchall()
        assert (int(harness.users[5]["id"]), "use", 0) in rows and (int(harness.admin["id"]), "use", 1) in rows
        assert db.execute("SELECT checkpoint FROM active_checkpoints WHERE style='jazz'").fetchone() == ("jazz-v2",)
    back = harness.admin_command(harness.admin, "use", style="jazz", checkpoint="jazz")
    assert "jazz now uses jazz" in ephemeral_text(harness, back)


def test_malicious_checkpoint_archives_are_refused(harness: Harness) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("../../outside.txt", b"owned")
        zf.writestr("model.safetensors", b"\x80\x04K\x01.")
    att = harness.standin.add_attachment("evil.zip", buf.getvalue())
    rec = harness.admin_command(harness.admin, "install", attachments={"archive": att})
    follow = harness.wait(interaction=rec, kind="followup")
    assert "unsafe path" in follow["json"]["content"]
    assert not (harness.tmp / "outside.txt").exists() and not (harness.ckdir.parent / "outside.txt").exists()
    assert sorted(p.name for p in harness.ckdir.iterdir()) == ["jazz", "jazz-v2"]


def test_continue_with_chorus_continues_a_posted_midi(harness: Harness) -> None:
    att = harness.standin.add_attachment("posted.mid", combo_midi())
    message = harness.standin.add_message(None, harness.users[0], "my tune", attachments=[att])
    menu = harness.lt.run(harness.standin.send_message_command("Continue with Chorus", message, harness.users[4]))
    harness.wait(interaction=menu, kind="callback")
    assert menu.callback_type == 9  # the modal: style, length, tempo
    rec = harness.lt.run(harness.standin.submit_modal(menu, {}, harness.users[4]))
    fields = {f["name"]: f["value"] for f in harness.clip_of(rec)["json"]["embeds"][0]["fields"]}
    assert fields["Continuation"] == "the new music starts at bar 5 of the clip" and fields["Style"] == "jazz"
    plain = harness.standin.add_message(None, harness.users[0], "no file here")
    rec = harness.lt.run(harness.standin.send_message_command("Continue with Chorus", plain, harness.users[4]))
    assert "no .mid attachment" in ephemeral_text(harness, rec)


def test_styles_lists_the_active_checkpoints(harness: Harness) -> None:
    rec = harness.lt.run(harness.standin.send_slash_command("styles", [], harness.users[1]))
    text = ephemeral_text(harness, rec)
    assert text.startswith("**jazz**: a small-group jazz") and "bpm" in text and "NLL" in text
