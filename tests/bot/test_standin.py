"""The Discord stand-in, proven against the unmodified discord.py client running in-process."""
from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from io import BytesIO
from typing import Any

import aiohttp
import discord
import pytest
import yarl
from discord import app_commands
from discord.ext import commands

from tests.bot.standin import DiscordStandIn
from tests.bot.standin_components import buttons
from tests.bot.standin_gateway import IDENTIFY, RESUME

CLIP = bytes(range(256)) * 40 + b"end of clip"  # stands for an uploaded audio clip
SEED = b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x01\xe0" + b"\x00" * 100  # stands for a seed MIDI file
EPHEMERAL, LOADING = 64, 128


def add_admin_commands(tree: app_commands.CommandTree, guild: discord.abc.Snowflake) -> None:
    """The tiny bot's ``/chorus-admin`` group, registered for one guild."""
    admin = app_commands.Group(name="chorus-admin", description="Administration")

    @admin.command(name="use", description="Switch the model")
    async def use(interaction: discord.Interaction, style: str, checkpoint: str) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        member = interaction.user
        assert isinstance(member, discord.Member)  # a guild interaction carries a member
        if not member.guild_permissions.manage_guild:
            await interaction.followup.send("admins only")
            return
        roles = ",".join(r.name for r in member.roles)
        await interaction.followup.send(f"now using {style}/{checkpoint} for {member.name} ({roles})")

    @admin.command(name="grant", description="Make a member a composer")
    async def grant(interaction: discord.Interaction, member: discord.Member, channel: discord.TextChannel) -> None:
        await interaction.response.send_message(f"{member.display_name} may compose in #{channel.name}")

    tree.add_command(admin, guild=guild)


def add_commands(tree: app_commands.CommandTree, guild: discord.abc.Snowflake) -> None:
    """The tiny bot's commands, registered for one guild."""

    @tree.command(name="ping", description="Think, edit the reply, then send a clip", guild=guild)
    async def ping(interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True)
        await interaction.edit_original_response(content="working…")
        embed = discord.Embed(title="Clip", description="4 bars of swing")
        await interaction.followup.send("pong", file=discord.File(BytesIO(CLIP), "clip.ogg"), embed=embed)

    @tree.command(name="size", description="Say how big the seed file is", guild=guild)
    async def size(interaction: discord.Interaction, seed: discord.Attachment) -> None:
        data = await seed.read()
        await interaction.response.send_message(f"{seed.filename}: {len(data)} bytes", ephemeral=True)

    @tree.command(name="slow", description="Answer too late", guild=guild)
    async def slow(interaction: discord.Interaction) -> None:
        await asyncio.sleep(0.6)
        await interaction.response.send_message("too late")

    add_admin_commands(tree, guild)

    class Knock(discord.ui.View):
        def __init__(self) -> None:
            super().__init__(timeout=None)

        @discord.ui.button(label="Knock", custom_id="knock")
        async def knock(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
            await interaction.response.edit_message(content=f"knocked by {interaction.user.name}", view=None)

    class Name(discord.ui.Modal, title="Who is there?"):
        name = discord.ui.TextInput(label="Name")

        async def on_submit(self, interaction: discord.Interaction) -> None:
            await interaction.response.send_message(f"hello {self.name.value}", ephemeral=True)

    @tree.command(name="door", description="A message with a button", guild=guild)
    async def door(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("a door", view=Knock())

    @tree.command(name="ask", description="Open a modal", guild=guild)
    async def ask(interaction: discord.Interaction) -> None:
        await interaction.response.send_modal(Name())

    @tree.context_menu(name="Seed size", guild=guild)
    async def seed_size(interaction: discord.Interaction, message: discord.Message) -> None:
        data = await message.attachments[0].read()
        await interaction.response.send_message(f"{message.author.name}'s seed: {len(data)} bytes", ephemeral=True)


class TinyBot(commands.Bot):
    """A minimal bot: default intents, guild commands synced at start-up."""

    def __init__(self, guild_id: str) -> None:
        super().__init__(command_prefix="!", intents=discord.Intents.default(), guild_ready_timeout=0.05)
        self.guild = discord.Object(int(guild_id))
        self.seen_ready = asyncio.Event()
        add_commands(self.tree, self.guild)

    async def setup_hook(self) -> None:
        await self.tree.sync(guild=self.guild)

    async def on_ready(self) -> None:
        self.seen_ready.set()


@contextlib.asynccontextmanager
async def running_bot(standin: DiscordStandIn) -> AsyncIterator[TinyBot]:
    """Start a TinyBot against the stand-in, wait for READY, and close it afterwards."""
    bot = TinyBot(standin.guild_id)
    task = asyncio.create_task(bot.start(standin.token))
    ready = asyncio.create_task(bot.seen_ready.wait())
    done, _ = await asyncio.wait({task, ready}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
    if ready not in done:
        ready.cancel()
        await bot.close()
        raise AssertionError(f"bot never became ready: {task.exception() if task in done else 'timeout'}")
    try:
        yield bot
    finally:
        await bot.close()
        await task


def run(monkeypatch: pytest.MonkeyPatch, scenario: Callable[[DiscordStandIn], Awaitable[None]],
        **standin_options: Any) -> None:
    """Run ``scenario`` with a started stand-in that discord.py is pointed at."""

    async def main() -> None:
        standin = DiscordStandIn(**standin_options)
        await standin.start()
        monkeypatch.setattr(discord.http.Route, "BASE", standin.api_base)
        monkeypatch.setattr(discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(standin.gateway_url))
        try:
            await scenario(standin)
        finally:
            await standin.stop()

    asyncio.run(asyncio.wait_for(main(), timeout=40))


def test_login_ready_and_command_sync(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario(standin: DiscordStandIn) -> None:
        async with running_bot(standin) as bot:
            assert bot.user is not None and str(bot.user.id) == standin.application_id
            guild = bot.get_guild(int(standin.guild_id))
            assert guild is not None and guild.name == "Chorus Test Guild"
            assert guild.get_channel(int(standin.channel["id"])) is not None
            assert guild.me is not None and [r.name for r in guild.me.roles] == ["@everyone", "Chorus"]
            synced = {c["name"]: c for c in standin.commands[standin.guild_id]}
            assert set(synced) == {"ping", "size", "slow", "chorus-admin", "door", "ask", "Seed size"}
            assert synced["Seed size"]["type"] == 3
            assert [o["name"] for o in synced["chorus-admin"]["options"]] == ["use", "grant"]
            assert standin.gateway.count(IDENTIFY) == 1
            assert [e["kind"] for e in standin.events[:3]] == ["login", "application", "commands"]

    run(monkeypatch, scenario)


def test_a_button_press_updates_its_message_and_a_modal_is_submitted(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario(standin: DiscordStandIn) -> None:
        user = standin.add_user("ada")
        async with running_bot(standin):
            rec = await standin.send_slash_command("door", [], user)
            await standin.wait_for(interaction=rec, kind="callback")
            (door,) = standin.messages_for(rec)
            assert buttons(door)["Knock"]["custom_id"] == "knock"
            press = await standin.send_component(door, "knock", user)
            await standin.wait_for(interaction=press, kind="callback")
            assert press.callback_type == 7 and press.payload["type"] == 3
            assert door["content"] == "knocked by ada" and door["components"] == []
            ask = await standin.send_slash_command("ask", [], user)
            await standin.wait_for(interaction=ask, kind="callback")
            assert ask.callback_type == 9 and standin.modal_of(ask)["title"] == "Who is there?"
            submit = await standin.submit_modal(ask, {"Name": "Ada"}, user)
            answer = await standin.wait_for(interaction=submit, kind="callback")
        assert submit.payload["type"] == 5
        assert answer["json"]["data"]["content"] == "hello Ada" and answer["json"]["data"]["flags"] & EPHEMERAL

    run(monkeypatch, scenario)


def test_defer_edit_and_follow_up_with_file_and_embed(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario(standin: DiscordStandIn) -> None:
        user = standin.add_user("ada")
        async with running_bot(standin):
            rec = await standin.send_slash_command("ping", [], user)
            follow_up = await standin.wait_for(interaction=rec, kind="followup")
        callback, edit = standin.responses_for(rec)[:2]
        assert callback["kind"] == "callback" and callback["json"]["type"] == 5
        assert rec.ack_seconds is not None and rec.ack_seconds < 3.0
        assert edit["kind"] == "edit" and edit["path"].endswith("/messages/@original")
        assert edit["json"]["content"] == "working…"
        assert follow_up["query"]["wait"] == "1"
        assert follow_up["json"]["embeds"][0]["title"] == "Clip"
        assert [(f["filename"], f["data"]) for f in standin.files_for(rec)] == [("clip.ogg", CLIP)]
        original, clip_message = standin.messages_for(rec)
        assert original["content"] == "working…" and not original["flags"] & LOADING
        assert clip_message["content"] == "pong" and clip_message["attachments"][0]["content_type"] == "audio/ogg"
        async with aiohttp.ClientSession() as http, http.get(clip_message["attachments"][0]["url"]) as resp:
            assert await resp.read() == CLIP

    run(monkeypatch, scenario)


def test_attachment_option_is_read_and_answered_ephemerally(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario(standin: DiscordStandIn) -> None:
        user = standin.add_user("ada")
        seed = standin.add_attachment("tune.mid", SEED)
        async with running_bot(standin):
            rec = await standin.send_slash_command("size", [], user, attachments={"seed": seed})
            callback = await standin.wait_for(interaction=rec, kind="callback")
        assert callback["json"]["type"] == 4
        assert callback["json"]["data"]["flags"] & EPHEMERAL
        assert callback["json"]["data"]["content"] == f"tune.mid: {len(SEED)} bytes"
        assert any(e["kind"] == "download" and seed["id"] in e["path"] for e in standin.events)
        assert seed["content_type"] == "audio/midi"

    run(monkeypatch, scenario)


def test_subcommand_sees_member_roles_and_first_follow_up_replaces_the_defer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def scenario(standin: DiscordStandIn) -> None:
        admin = standin.add_user("grace", roles=[standin.admin_role])
        someone = standin.add_user("linus")
        options = [{"name": "style", "value": "jazz"}, {"name": "checkpoint", "value": "v2"}]
        async with running_bot(standin):
            allowed = await standin.send_slash_command("chorus-admin", options, admin, group="use")
            refused = await standin.send_slash_command("chorus-admin", options, someone, group="use")
            await standin.wait_for(interaction=allowed, kind="followup")
            await standin.wait_for(interaction=refused, kind="followup")
            granted = await standin.send_slash_command(
                "chorus-admin", [{"name": "member", "value": someone}, {"name": "channel", "value": standin.channel}],
                admin, group="grant")
            answer = await standin.wait_for(interaction=granted, kind="callback")
        assert answer["json"]["data"]["content"] == "linus may compose in #general"
        (message,) = standin.messages_for(allowed)  # the follow-up became the "thinking" message
        assert message["content"] == "now using jazz/v2 for grace (@everyone,admin)"
        assert message["flags"] & EPHEMERAL and not message["flags"] & LOADING
        assert [m["content"] for m in standin.messages_for(refused)] == ["admins only"]

    run(monkeypatch, scenario)


def test_message_context_menu_reads_the_target_attachment(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario(standin: DiscordStandIn) -> None:
        user = standin.add_user("ada")
        target = standin.add_message(None, user, "my seed", [standin.add_attachment("seed.mid", SEED)])
        async with running_bot(standin):
            rec = await standin.send_message_command("Seed size", target, user)
            callback = await standin.wait_for(interaction=rec, kind="callback")
        assert callback["json"]["data"]["content"] == f"ada's seed: {len(SEED)} bytes"
        assert standin.messages_for(rec)[0]["type"] == 23  # a context-menu reply

    run(monkeypatch, scenario)


def test_restarted_bot_identifies_again_and_dropped_one_resumes(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario(standin: DiscordStandIn) -> None:
        user = standin.add_user("ada")
        seed = standin.add_attachment("tune.mid", SEED)
        async with running_bot(standin):
            first = await standin.send_slash_command("size", [], user, attachments={"seed": seed})
            await standin.wait_for(interaction=first, kind="callback")
        async with running_bot(standin):  # a restarted bot process: new client, same stand-in
            await standin.wait_until_connected(identifies=2, timeout=1)
            assert standin.gateway.count(IDENTIFY) == 2
            await standin.disconnect_all()
            again = await standin.send_slash_command("size", [], user, attachments={"seed": seed})
            callback = await standin.wait_for(interaction=again, kind="callback")
            assert standin.gateway.count(RESUME) == 1 and standin.gateway.count(IDENTIFY) == 2
        assert callback["json"]["data"]["content"] == f"tune.mid: {len(SEED)} bytes"

    run(monkeypatch, scenario)


def test_discord_rules_on_acknowledgement_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario(standin: DiscordStandIn) -> None:
        user = standin.add_user("ada")
        async with running_bot(standin) as bot:
            late = await standin.send_slash_command("slow", [], user)
            refused = await standin.wait_for(interaction=late, kind="callback")
            seed = standin.add_attachment("tune.mid", SEED)
            rec = await standin.send_slash_command("size", [], user, attachments={"seed": seed})
            await standin.wait_for(interaction=rec, kind="callback")
            url = f"{standin.api_base}/interactions/{rec.id}/{rec.token}/callback"
            async with aiohttp.ClientSession() as http, http.post(url, json={"type": 4, "data": {}}) as resp:
                assert resp.status == 400 and (await resp.json())["code"] == 40060
            follow_up = f"{standin.api_base}/webhooks/{standin.application_id}/{rec.token}?wait=1"
            async with aiohttp.ClientSession() as http, http.post(follow_up, json={"content": "x" * 2001}) as resp:
                assert resp.status == 400 and (await resp.json())["code"] == 50035
            with pytest.raises(discord.NotFound):
                await bot.fetch_sticker(1)
        assert refused["status"] == 404 and late.acked_at is None
        assert standin.events[-1]["kind"] == "unknown" and standin.events[-1]["path"] == "/stickers/1"

    run(monkeypatch, scenario, ack_deadline_s=0.3)


def test_wrong_token_fails_login(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario(standin: DiscordStandIn) -> None:
        client = discord.Client(intents=discord.Intents.none())
        try:
            with pytest.raises(discord.LoginFailure):
                await client.login("not-the-token")
        finally:
            await client.close()

    run(monkeypatch, scenario)


def test_message_limits_nonces_history_and_mentions_are_discords(monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario(standin: DiscordStandIn) -> None:
        user = standin.add_user("ada")
        async with running_bot(standin) as bot:
            channel = await bot.fetch_channel(int(standin.channel["id"]))
            too_long = discord.Embed(title="Clip").set_footer(text="x" * 2049)
            with pytest.raises(discord.HTTPException) as refused:
                await channel.send(embed=too_long)
            assert refused.value.status == 400 and refused.value.code == 50035 and "footer.text" in str(refused.value)
            empty_field = discord.Embed(title="Clip").add_field(name="Key", value=" ")
            with pytest.raises(discord.HTTPException, match="fields.0.value"):
                await channel.send(embed=empty_field)
            fields = discord.Embed(title="Clip")
            for i in range(6):
                fields.add_field(name=f"f{i}", value="y" * 1024)
            with pytest.raises(discord.HTTPException, match="6000"):
                await channel.send(embed=fields)
            with pytest.raises(discord.HTTPException, match="attachments"):
                await channel.send(files=[discord.File(BytesIO(b"x"), f"{i}.txt") for i in range(11)])
            first = await channel.send("once", nonce=12345)
            again = await channel.send("once", nonce=12345)  # a resend after a lost answer: the same message
            assert again.id == first.id
            ping = await channel.send(f"@everyone <@{user['id']}>")  # discord.py's default: everything parses
            quiet = await channel.send(f"@everyone <@{user['id']}>", allowed_mentions=discord.AllowedMentions.none())
            history = [m.id async for m in channel.history(limit=10)]
        assert history == [quiet.id, ping.id, first.id]
        assert standin.messages[str(ping.id)]["mention_everyone"]
        assert not standin.messages[str(quiet.id)]["mention_everyone"] and standin.messages[str(quiet.id)]["mentions"] == []

    run(monkeypatch, scenario)
