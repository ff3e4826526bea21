"""Every message the bot builds fits Discord's limits (`bot.ui.limits`)."""
from __future__ import annotations

import discord

from bot.store.db import Job
from bot.ui import limits
from bot.ui.delivery import clip_embed
from engine.compose.request import ComposeRequest
from engine.settings import Settings


def test_clip_shortens_with_an_ellipsis_and_leaves_short_text_alone() -> None:
    assert limits.clip("abc", 5) == "abc"
    assert limits.clip("abcdef", 5) == "abcd…" and len(limits.clip("x" * 5000, 2000)) == 2000
    assert limits.field_value("  ") == "—" and len(limits.field_value("y" * 3000)) == 1024


def test_fit_embed_keeps_each_part_and_the_whole_within_discords_limits() -> None:
    embed = discord.Embed(title="t" * 300, description="d" * 5000)
    for i in range(30):
        embed.add_field(name=f"n{i}", value="v" * 1500)
    embed.set_footer(text="f" * 3000)
    limits.fit_embed(embed)
    assert len(embed.title) == 256 and len(embed.description) == 4096 and len(embed.fields) == 25
    assert all(len(f.value) <= 1024 for f in embed.fields) and len(embed.footer.text) <= 2048
    assert len(embed) <= limits.EMBED_TOTAL


def test_a_clip_embed_with_the_longest_legal_changes_fits() -> None:
    changes = " | ".join([" ".join(["C7(b9,#9,#11,b13)/Bb"] * 4)] * 64)
    req = ComposeRequest.build("jazz", "30s", Settings(), ["jazz"], changes=changes, seed=1)
    result = {"seconds": 30.0, "tempo": 160, "meter": "4/4", "key": "C", "bars": 64, "seed": 1,
              "changes": changes, "files": {"audio": "a.ogg", "midi": "a.mid", "picture": "a.png"},
              "timings": {"total": 1.0}, "checkpoint_hash": "abc"}
    job = Job("0123456789abcdef", 1, 2, 3, req.to_payload(), "jazz", "jazz", "abc", status="done", result=result)
    embed = clip_embed(job)
    assert len(embed) <= limits.EMBED_TOTAL and len(embed.footer.text) <= limits.FOOTER
    assert embed.footer.text.startswith("job 0123456789abcdef · Reproduce: /compose style:jazz")
    assert all(0 < len(f.value) <= limits.FIELD_VALUE for f in embed.fields)
    assert any("in the MIDI" in f.name for f in embed.fields)


def test_the_upload_limit_is_the_smaller_of_the_setting_and_the_guilds() -> None:
    assert limits.upload_limit(50 * 2**20, None) == 10 * 2**20
    assert limits.upload_limit(8 * 2**20, None) == 8 * 2**20
