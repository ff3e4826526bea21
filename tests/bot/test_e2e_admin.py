"""End to end: /chorus-admin cancel and audit in the real bot process against the Discord stand-in."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.bot.harness import Harness, ephemeral_text

pytestmark = pytest.mark.slow  # real processes end to end: `make test-fast` leaves these out


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path):
    # one worker taking one job at a time: a second request waits behind the first
    h = Harness(tmp_path_factory.mktemp("bot"), {"jazz": tiny_checkpoint}, CHORUS_BATCH_MAX="1")
    h.start_bot()
    yield h
    h.close()


def job_of(h: Harness, user: dict) -> tuple[str, str]:
    with sqlite3.connect(h.tmp / "chorus.db") as db:
        return db.execute("SELECT id, status FROM jobs WHERE user_id = ? ORDER BY created_at DESC",
                          (int(user["id"]),)).fetchone()


def test_an_admin_cancels_a_waiting_job_and_its_user_is_told(harness: Harness) -> None:
    first = harness.compose(harness.users[0], length="3m")
    harness.wait(interaction=first, kind="callback")
    second = harness.compose(harness.users[1], length="3m")
    harness.wait(interaction=second, kind="callback")
    job_id, status = job_of(harness, harness.users[1])
    assert status in ("queued", "running")
    refused = harness.admin_command(harness.users[2], "cancel", job=job_id)
    assert "for Chorus admins" in ephemeral_text(harness, refused)
    ok = harness.admin_command(harness.admin, "cancel", job=job_id)
    assert f"Cancelled job {job_id}" in ephemeral_text(harness, ok)
    harness.wait(interaction=second, predicate=lambda e: "cancelled by an admin" in json.dumps(e["json"]))
    assert job_of(harness, harness.users[1])[1] == "failed"
    again = harness.admin_command(harness.admin, "cancel", job=job_id)
    assert "failed already" in ephemeral_text(harness, again)
    assert len(harness.clip_of(first, timeout=180)["files"]) >= 3  # the other job is served


def test_the_audit_lists_the_latest_admin_commands(harness: Harness) -> None:
    rec = harness.admin_command(harness.admin, "audit", count=3)
    lines = ephemeral_text(harness, rec).splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("✅") and f"<@{harness.admin['id']}> audit" in lines[0]
    refused = harness.admin_command(harness.users[3], "audit")
    assert "for Chorus admins" in ephemeral_text(harness, refused)


def test_emptying_the_dev_guilds_moves_the_commands_to_global_without_duplicates(tmp_path: Path,
                                                                                 tiny_checkpoint: Path) -> None:
    h = Harness(tmp_path, {"jazz": tiny_checkpoint})
    try:
        h.start_bot()
        guild = h.standin.guild_id
        assert {c["name"] for c in h.standin.commands[guild]} >= {"compose", "chorus-admin"}
        h.stop_bot()
        h.env["CHORUS_DEV_GUILD_IDS"] = ""
        h.start_bot()
        assert {c["name"] for c in h.standin.commands[None]} >= {"compose", "chorus-admin"}
        assert h.standin.commands[guild] == []  # the development copy is gone
        rec = h.compose(h.users[0], length="6s")
        assert len(h.clip_of(rec)["files"]) >= 3  # members reach the global commands
        h.stop_bot()
        guild_puts = sum(1 for e in h.standin.events if e["kind"] == "commands" and guild in e["path"])
        h.start_bot()  # nothing left to clear: the guild is not touched again
        assert sum(1 for e in h.standin.events if e["kind"] == "commands" and guild in e["path"]) == guild_puts
    finally:
        h.close()
