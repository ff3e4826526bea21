"""Showing progress and posting finished clips on Discord.

Everything goes through the interaction's webhook (application id + token), rebuilt from the job
record, so it works the same after a restart. The finished clip replaces the job's status message
(an edit, which is safe to repeat after a crash: the user sees one clip, never two). Once the
token is near its 15-minute life the clip goes to the channel instead, mentioning the user.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import discord

from bot.db import Job

log = logging.getLogger(__name__)
TOKEN_LIFE_S = 14.5 * 60
STAGES = {
    "composing": "🎼 Composing…",
    "rendering": "🎧 Rendering…",
    "retrying": "🔁 Retrying after a worker restart…",
    "offline": "📴 The composer is offline; your request is saved and will run when it is back…",
    "resumed": "⏳ The composer is back; your request is queued again…",
}


def clip_embed(job: Job) -> discord.Embed:
    s = job.result or {}
    timings = s.get("timings", {})
    embed = discord.Embed(title=f"{job.style.title()} clip · {s.get('seconds', 0):.0f} s",
                          colour=discord.Colour.gold())
    embed.add_field(name="Style", value=job.style)
    embed.add_field(name="Checkpoint", value=f"{job.checkpoint} `{s.get('checkpoint_hash', '')}`")
    embed.add_field(name="Tempo", value=f"{s.get('tempo', 0):g} bpm, {s.get('meter', '')}")
    embed.add_field(name="Key", value=str(s.get("key", "")) + (f", {s['form']} form" if s.get("form") else ""))
    if s.get("era") or s.get("player"):
        embed.add_field(name="Era", value=" · ".join(str(v) for v in (s.get("era"), s.get("player")) if v))
    embed.add_field(name="Bars", value=str(s.get("bars", "")))
    embed.add_field(name="Seed", value=f"`{s.get('seed', '')}`")
    changes = str(s.get("changes", ""))
    embed.add_field(name="Changes", value=(changes[:1000] + "…") if len(changes) > 1000 else changes or "—", inline=False)
    if s.get("continuation_starts_bar"):
        embed.add_field(name="Continuation", value=f"starts at bar {s['continuation_starts_bar']}", inline=False)
    took = time.time() - job.created_at
    embed.add_field(name="Time", value=f"{timings.get('total', 0):.1f} s composing, {took:.1f} s in all", inline=False)
    embed.set_footer(text=f"Reproduce: {reproduce(job)}")
    files = s.get("files", {})
    if files.get("picture"):
        embed.set_image(url="attachment://clip.png")
    return embed


def reproduce(job: Job) -> str:
    """The /compose line that makes the same clip again (the seed and tempo the clip used)."""
    s = job.result or {}
    req = job.compose_request()
    again = f"/compose style:{job.style} length:{req.seconds:g}s seed:{s.get('seed', '')} tempo:{s.get('tempo', 0):g}"
    if req.temperature is not None:
        again += f" temperature:{req.temperature:g}"
    if req.changes_text:
        again += f" changes:{req.changes_text}"
    if req.form:
        again += f" form:{req.form}"
    if req.key:
        again += f" key:{req.key}"
    if req.era:
        again += f" era:{req.era}"
    return again


class DiscordDeliverer:
    """`bot.service.Deliverer` for Discord."""

    def __init__(self, client: discord.Client, upload_limit: int) -> None:
        self.client = client
        self.upload_limit = upload_limit

    def _webhook(self, job: Job) -> discord.Webhook | None:
        if not job.application_id or not job.interaction_token or time.time() - job.created_at > TOKEN_LIFE_S:
            return None
        data = {"id": job.application_id, "type": 3, "token": job.interaction_token}
        return discord.Webhook.from_state(data, state=self.client._connection)

    async def _channel(self, job: Job) -> discord.abc.Messageable | None:
        if job.channel_id is None:
            return None
        channel = self.client.get_channel(job.channel_id)
        if channel is None:
            try:
                channel = await self.client.fetch_channel(job.channel_id)
            except discord.HTTPException:
                return None
        return channel  # type: ignore[return-value]

    async def progress(self, job: Job, stage: str) -> None:
        wh = self._webhook(job)
        if wh is None or job.status_message_id is None or job.status in ("done", "delivered", "failed"):
            return
        try:
            await wh.edit_message(job.status_message_id, content=f"{STAGES.get(stage, stage)} ({job.style})")
        except discord.HTTPException as exc:
            log.info("could not show progress of job %s: %s", job.id, exc)

    async def deliver(self, job: Job) -> bool:
        files = (job.result or {}).get("files", {})
        paths = [Path(files[k]) for k in ("audio", "midi", "picture") if files.get(k)]
        if not paths or not all(p.is_file() for p in paths):
            return await self.fail(job, "the finished clip went missing before it could be posted")
        if sum(p.stat().st_size for p in paths) > self.upload_limit:
            return await self.fail(job, "the clip is larger than Discord's upload limit; try ogg or a shorter length")
        attachments = [discord.File(p, filename=p.name) for p in paths]
        embed = clip_embed(job)
        wh = self._webhook(job)
        try:
            if wh is not None and job.status_message_id:
                # The clip replaces the status message: an edit can be repeated after a crash
                # without the user ever seeing two clips.
                await wh.edit_message(job.status_message_id, content=f"✅ <@{job.user_id}> your {job.style} clip:",
                                      embed=embed, attachments=attachments)
                return True
            if wh is not None:
                await wh.send(content=f"<@{job.user_id}>", embed=embed, files=attachments, wait=True)
                return True
            channel = await self._channel(job)
            if channel is None:
                return False
            await channel.send(content=f"<@{job.user_id}> your {job.style} clip is ready.", embed=embed, files=attachments)
            return True
        except discord.HTTPException as exc:
            log.warning("could not deliver job %s: %s", job.id, exc)
            return False

    async def fail(self, job: Job, reason: str) -> bool:
        wh = self._webhook(job)
        try:
            if wh is not None:
                await wh.send(content=f"⚠️ {reason}", ephemeral=True, wait=True)
                if job.status_message_id:
                    await wh.edit_message(job.status_message_id, content="❌ This request could not be composed.")
                return True
            channel = await self._channel(job)
            if channel is not None:
                await channel.send(content=f"<@{job.user_id}> your {job.style} request could not be composed: {reason}")
                return True
        except discord.HTTPException as exc:
            log.warning("could not report the failure of job %s: %s", job.id, exc)
        return False
