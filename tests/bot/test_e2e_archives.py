"""End to end: hostile checkpoint archives and /chorus-admin remove, through the real bot process
(``chorus serve``) and the Discord stand-in.

While an admin's install of a zip bomb or a 100,000-member tar.gz is refused, another user keeps
asking for ``/styles``: every ask must be answered within Discord's 3 s, and the bot's event loop
must never stall for 250 ms (``/chorus-admin queue`` shows its longest stall).
"""
from __future__ import annotations

import json
import re
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from tests.bot.harness import Harness
from tests.bot.standin import InteractionRecord
from tests.helpers import deflated_zip, many_member_tgz, zip_bomb

pytestmark = pytest.mark.slow  # real processes end to end: `make test-fast` leaves these out

MAX_STALL_MS = 250
ACK_LIMIT_S = 3.0


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path, tiny_checkpoint_b: Path):
    tmp = tmp_path_factory.mktemp("archives")
    spare = shutil.copytree(tiny_checkpoint_b, tmp / "copies" / "jazz-v2")  # removals never reach the session's fixtures
    odd = shutil.copytree(tiny_checkpoint, tmp / "copies" / "odd")
    meta = json.loads((odd / "meta.json").read_text())
    meta["metrics"]["valid_nll"] = "n/a"  # as installed before meta types were checked
    (odd / "meta.json").write_text(json.dumps(meta))
    h = Harness(tmp / "bot", {"jazz": tiny_checkpoint, "jazz-v2": spare, "odd": odd})
    h.start_bot()
    yield h
    h.close()


def reply_text(h: Harness, rec: InteractionRecord, kind: str = "callback", timeout: float = 60.0) -> str:
    e = h.wait(timeout, interaction=rec, kind=kind)
    return ((e["json"] or {}).get("data") or e["json"] or {}).get("content", "")


def admin(h: Harness, sub: str, **options) -> str:
    return reply_text(h, h.admin_command(h.admin, sub, **options))


def longest_stall_ms(h: Harness) -> int:
    text = admin(h, "queue")
    found = re.search(r"event loop: longest stall (\d+) ms", text)
    assert found, text
    return int(found.group(1))


def install_while_others_ask(h: Harness, filename: str, data: bytes) -> tuple[str, list[InteractionRecord]]:
    """Upload an archive with /chorus-admin install; until its answer comes, another user asks for
    /styles about every 0.1 s. Returns the install's reply and those /styles interactions."""
    rec = h.admin_command(h.admin, "install", attachments={"archive": h.standin.add_attachment(filename, data)})
    asks: list[InteractionRecord] = []
    deadline = time.monotonic() + 120
    reply = None
    while reply is None:
        assert time.monotonic() < deadline, "the install was not answered within 120 s"
        asks.append(h.lt.run(h.standin.send_slash_command("styles", [], h.users[0])))
        try:
            reply = h.wait(0.1, interaction=rec, kind="followup")
        except TimeoutError:
            continue
    for ask in asks:  # each answered (or refused as late) before we judge it
        h.wait(30, interaction=ask, kind="callback")
    return reply["json"]["content"], asks


@pytest.mark.parametrize(("filename", "build"), [("bomb.zip", zip_bomb), ("many.tar.gz", many_member_tgz)],
                         ids=["zip-12MB-to-1GB", "tar-gz-100k-members"])
def test_an_archive_bomb_is_refused_while_other_users_are_served(harness: Harness, filename: str, build) -> None:
    before = sorted(p.name for p in harness.ckdir.iterdir())
    text, asks = install_while_others_ask(harness, filename, build())
    assert text == f"⚠️ {filename}: more than 8 members"
    slow = [(a.ack_seconds, harness.responses(a)[0]["status"]) for a in asks
            if a.ack_seconds is None or a.ack_seconds >= ACK_LIMIT_S]
    assert not slow, f"/styles answered late or refused during the install: {slow}"
    assert longest_stall_ms(harness) < MAX_STALL_MS
    assert sorted(p.name for p in harness.ckdir.iterdir()) == before  # no staging folder left behind


def test_a_checkpoint_with_a_bad_meta_is_flagged_and_styles_keep_working(harness: Harness) -> None:
    styles = reply_text(harness, harness.lt.run(harness.standin.send_slash_command("styles", [], harness.users[1])))
    assert styles.startswith("**jazz**: ") and "Training: jazz: jazz, NLL" in styles and "odd" not in styles
    listing = admin(harness, "checkpoints")
    assert "▶ jazz: jazz, NLL" in listing
    assert "✖ odd: not usable (in meta.json, metrics.valid_nll is the string 'n/a', expected a number or null)" in listing


def test_remove_deletes_inactive_checkpoints_and_refuses_the_active_one(harness: Harness, tiny_checkpoint: Path) -> None:
    files = [(n, (tiny_checkpoint / n).read_bytes()) for n in ("model.safetensors", "meta.json")]
    att = harness.standin.add_attachment("spare.zip", deflated_zip(files))
    installed = reply_text(harness, harness.admin_command(harness.admin, "install", attachments={"archive": att},
                                                          name="spare"), kind="followup")
    assert installed.startswith("✅ Installed spare: jazz, NLL")
    assert (harness.ckdir / "spare").is_dir() and not (harness.ckdir / "spare").is_symlink()

    assert admin(harness, "remove", name="jazz") == \
        "⚠️ jazz serves jazz; point that at another checkpoint with /chorus-admin use first"
    assert admin(harness, "remove", name="../jazz").startswith("⚠️ '../jazz' is not a checkpoint name")
    assert admin(harness, "remove", name="nothing") == "⚠️ no checkpoint named 'nothing' is installed"
    member = reply_text(harness, harness.admin_command(harness.users[2], "remove", name="spare"))
    assert "for Chorus admins" in member
    for name in ("spare", "jazz-v2", "odd"):
        assert admin(harness, "remove", name=name) == f"🗑 Removed checkpoint {name}."
    assert sorted(p.name for p in harness.ckdir.iterdir()) == ["jazz"]
    assert (harness.tmp.parent / "copies" / "jazz-v2" / "model.safetensors").is_file()  # a linked one: only the link went
    listing = admin(harness, "checkpoints")
    assert listing.startswith("▶ jazz: jazz, NLL") and "odd" not in listing and "spare" not in listing
    with sqlite3.connect(harness.tmp / "chorus.db") as db:
        rows = db.execute("SELECT user_id, action, allowed FROM audit_log WHERE action = 'remove'").fetchall()
    assert (int(harness.admin["id"]), "remove", 1) in rows and (int(harness.users[2]["id"]), "remove", 0) in rows


def test_the_packed_shipped_jazz_checkpoint_installs_through_chat(harness: Harness, tmp_path: Path) -> None:
    """Issue 13: `chorus checkpoints pack jazz` fits Discord's 10 MiB and `/chorus-admin install` takes it."""
    from engine.formats.pack import pack
    from tests.helpers import REPO

    done = pack(REPO / "checkpoints" / "jazz", tmp_path / "jazz.zip")
    data = done.path.read_bytes()
    assert len(data) < 10 * 1024 * 1024
    att = harness.standin.add_attachment("jazz.zip", data)
    rec = harness.admin_command(harness.admin, "install", attachments={"archive": att}, name="jazz-half")
    installed = reply_text(harness, rec, kind="followup")
    assert installed.startswith("✅ Installed jazz-half: jazz"), installed
    assert admin(harness, "remove", name="jazz-half") == "🗑 Removed checkpoint jazz-half."
