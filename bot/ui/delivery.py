"""Showing progress and posting finished clips (or failure notices) on Discord, exactly once.

Everything goes through the interaction's webhook (application id + token), rebuilt from the job
record, so it works the same after a restart. The clip replaces the job's status message, the
interaction's original response: an edit, which is safe to repeat after a crash, so the user sees
one clip, never two (through the webhook while its 15-minute token lives, then through the channel).
Only when that message is gone, or cannot be edited, is a new message posted (a follow-up, or a
channel message mentioning the user). Then the service records that a post began before it is
sent, and a later try first looks in the channel for a message carrying the job's id, and sends
with a nonce that Discord enforces: a crash between Discord's answer and the bot's record never
makes a second message.

Every message is built within Discord's limits (`bot.ui.limits`); mentions are limited to the
requesting user.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path

import discord

from bot.queues.policy import Outcome, Posting
from bot.service.estimate import Estimate
from bot.store.db import Job
from bot.store.results import ResultError, check_result
from bot.ui import limits
from bot.ui.views import clip_view
from engine.band.arrange import PARTS

log = logging.getLogger(__name__)
TOKEN_LIFE_S = 14.5 * 60
HISTORY_LOOKBACK = 100  # channel messages searched for an earlier post of a job
STAGES = {
    "composing": "🎼 Composing…",
    "rendering": "🎧 Rendering…",
    "retrying": "🔁 Retrying after a worker restart…",
    "offline": "📴 The composer is offline; your request is saved and will run when it is back…",
    "resumed": "⏳ The composer is back; your request is queued again…",
}
STARTED = ("composing", "rendering", "retrying")  # stages after which a job can no longer be cancelled
GONE = (10003, 10008, 10015, 10062)  # unknown channel, message, webhook, interaction


def queued_text(style: str, position: int, wait: Estimate) -> str:
    """``⏳ Queued your jazz clip (position 3 in the queue, about 8 s).``: the wait is until the clip is ready."""
    where = "next up" if position <= 1 else f"position {position} in the queue"
    return limits.content(f"⏳ Queued your {style} clip ({where}, {wait.text()}).")


def mention(user_id: int) -> discord.AllowedMentions:
    """Allow pinging only the requesting user."""
    return discord.AllowedMentions(everyone=False, roles=False, users=[discord.Object(user_id)], replied_user=False)


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
    embed.add_field(name="Changes" if len(changes) <= limits.FIELD_VALUE else "Changes (all of them are in the MIDI)",
                    value=limits.field_value(changes), inline=False)
    if s.get("continuation_starts_bar"):
        embed.add_field(name="Continuation", value=continuation_text(s), inline=False)
    took = time.time() - job.created_at
    embed.add_field(name="Time", value=f"{timings.get('total', 0):.1f} s composing, {took:.1f} s in all", inline=False)
    embed.set_footer(text=f"job {job.id} · Reproduce: {reproduce(job)}")  # the id first: it survives shortening
    files = s.get("files", {})
    if files.get("picture"):
        embed.set_image(url=f"attachment://{clip_name(job, files['picture'])}")
    return limits.fit_embed(embed)


def continuation_text(s: dict) -> str:
    """"continues your blues in F major at bar 9, from bar 9 of the clip" and the like."""
    starts = f"the new music starts at bar {s['continuation_starts_bar']} of the clip"
    c = s.get("continues")
    if not isinstance(c, dict):
        return starts
    key = f" in {c['key']}" if c.get("key") else ""
    where = f" at bar {c['bar']}" if c.get("form") and isinstance(c.get("bar"), int) else ""
    return f"continues your {c['form'] if c.get('form') else 'tune'}{key}{where}; {starts}"


def clip_name(job: Job, path: str | Path) -> str:
    """The name a clip's file is posted under: ``chorus-jazz-F-160bpm-1741041145.ogg`` (style, key,
    tempo, when it was asked for; a minor key as ``Fm``, a sharp as ``s``)."""
    s = job.result or {}
    tonic, _, mode = str(s.get("key") or "").partition(" ")
    key = (tonic + ("m" if mode.startswith("min") else "")).replace("#", "s")
    parts = ["chorus", job.style, key, f"{float(s.get('tempo') or 0):.0f}bpm", str(int(job.created_at))]
    stem = re.sub(r"[^A-Za-z0-9_-]+", "", "-".join(p for p in parts if p)) or "chorus"
    return stem + Path(path).suffix.lower()


def reproduce(job: Job) -> str:
    """The /compose line that makes the same clip again: the seed, tempo and temperature the clip
    used, and every option given that changes it."""
    s = job.result or {}
    req = job.compose_request()
    again = f"/compose style:{job.style} length:{req.seconds:g}s seed:{s.get('seed', '')} tempo:{s.get('tempo', 0):g}"
    temperature = req.temperature if req.temperature is not None else s.get("temperature")
    if temperature is not None:
        again += f" temperature:{temperature:g}"
    if req.changes_text:
        again += f" changes:{req.changes_text}"
    if req.form:
        again += f" form:{req.form}"
    if req.key:
        again += f" key:{req.key}"
    if req.era:
        again += f" era:{req.era}"
    if req.swing is not None:
        again += f" swing:{req.swing:g}"
    if req.feel:
        again += f" feel:{req.feel}"
    if req.audio_format != "ogg":
        again += f" format:{req.audio_format}"
    if left_out := [p for p in PARTS if p not in req.parts]:
        again += f" without:{' '.join(left_out)}"
    if req.seed_midi is not None:
        again += " seed_midi:(the same file)"
    return again




class DiscordDeliverer:
    """`bot.service.compose.Deliverer` for Discord."""

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
            text = limits.content(f"{STAGES.get(stage, stage)} ({job.style})")
            if stage in STARTED:  # too late to cancel: the Cancel button goes
                await wh.edit_message(job.status_message_id, content=text, view=None)
            else:
                await wh.edit_message(job.status_message_id, content=text)
        except discord.HTTPException as exc:
            log.info("could not show progress of job %s: %s", job.id, exc)

    async def queued(self, job: Job, position: int, wait: Estimate) -> None:
        """Show a waiting job's new place and wait (its Cancel button stays)."""
        wh = self._webhook(job)
        if wh is None or job.status_message_id is None:
            return
        try:
            await wh.edit_message(job.status_message_id, content=queued_text(job.style, position, wait))
        except discord.HTTPException as exc:
            log.info("could not show the place of job %s: %s", job.id, exc)

    async def deliver(self, job: Job, posting: Posting) -> Outcome:
        """Post the finished clip in place of the status message (or, failing that, once as a new message)."""
        try:
            result = check_result(job.result)
            embed = clip_embed(job)
        except (ResultError, ValueError, TypeError, KeyError) as exc:
            log.error("job %s has a result that cannot be shown: %s", job.id, exc)
            return Outcome(False, reason="the finished clip came back damaged")
        files = result["files"]
        paths = [Path(files[k]) for k in ("audio", "midi", "picture") if files.get(k)]
        if not all(p.is_file() for p in paths):
            return Outcome(False, reason="the finished clip went missing before it could be posted")
        guild = self.client.get_guild(job.guild_id) if job.guild_id else None
        allowed = limits.upload_limit(self.upload_limit, guild)
        if sum(p.stat().st_size for p in paths) > allowed:
            return Outcome(False, reason=f"the clip is larger than this server's {allowed // 2**20} MiB upload limit;"
                                         " try ogg or a shorter length")

        def attachments() -> list[discord.File]:  # a File is read once: make new ones for each try
            return [discord.File(p, filename=clip_name(job, p)) for p in paths][: limits.ATTACHMENTS]

        edited = f"✅ <@{job.user_id}> your {job.style} clip:"
        posted = f"<@{job.user_id}> your {job.style} clip is ready."
        return await self._send(job, posting, edited, posted, embed, attachments, clip_view(job.id))

    async def notify_failure(self, job: Job, reason: str, posting: Posting) -> Outcome:
        """Tell the user, once, that the job failed: in place of the status message where possible."""
        text = limits.content(f"❌ <@{job.user_id}> your {job.style} request could not be composed: {reason}"
                              f" (job `{job.id}`)")
        return await self._send(job, posting, text, text, None, list)

    async def _send(self, job: Job, posting: Posting, edited: str, posted: str, embed: discord.Embed | None,
                    attachments: Callable[[], list[discord.File]], view: discord.ui.View | None = None) -> Outcome:
        """Edit the status message into ``edited`` (``view``'s buttons, or none: a queued job's
        Cancel goes), else post ``posted`` once."""
        allowed = mention(job.user_id)
        wh = self._webhook(job)
        try:
            if wh is not None:
                target = job.status_message_id or "@original"
                try:  # an edit can be repeated after a crash without the user seeing two messages
                    message = await wh.edit_message(target, content=limits.content(edited), embed=embed,  # type: ignore[arg-type]
                                                    attachments=attachments(), allowed_mentions=allowed, view=view)
                    return Outcome(True, message.id)
                except discord.NotFound:
                    log.info("job %s: its status message is gone; posting a new one", job.id)
            elif job.status_message_id and (channel := await self._channel(job)) is not None:
                try:  # the token has expired, but the bot may still edit its own message in the channel
                    message = await channel.get_partial_message(job.status_message_id).edit(  # type: ignore[union-attr]
                        content=limits.content(edited), embed=embed, attachments=attachments(), allowed_mentions=allowed)
                    return Outcome(True, message.id)
                except (discord.NotFound, discord.Forbidden, AttributeError):
                    log.info("job %s: cannot edit its status message in the channel; posting a new one", job.id)
            found = await self._earlier_post(job)
            if found is not None:
                return Outcome(True, found)
            await posting()
            if wh is not None:
                message = await wh.send(content=limits.content(posted), embed=embed or discord.utils.MISSING,
                                        files=attachments(), allowed_mentions=allowed, wait=True,
                                        view=view or discord.utils.MISSING)
                return Outcome(True, message.id)
            channel = await self._channel(job)
            if channel is None:
                return Outcome(False, retry=True)
            message = await channel.send(content=limits.content(posted), embed=embed, files=attachments(),
                                         allowed_mentions=allowed, nonce=_nonce(job), view=view)
            return Outcome(True, message.id)
        except discord.HTTPException as exc:
            code = getattr(exc, "code", 0)
            if exc.status in (429,) or exc.status >= 500 or code in GONE:
                log.warning("could not reach the user of job %s yet: %s", job.id, exc)
                return Outcome(False, retry=True)
            log.error("Discord refused the message for job %s: %s", job.id, exc)
            return Outcome(False, reason="Discord refused the message")
        except (OSError, TimeoutError) as exc:  # the network, or Discord unreachable
            log.warning("could not reach Discord for job %s: %s", job.id, exc)
            return Outcome(False, retry=True)

    async def _earlier_post(self, job: Job) -> int | None:
        """The id of a message posted for ``job`` by an earlier try whose answer was lost, if any."""
        if job.posted_at is None:
            return None
        channel = await self._channel(job)
        if channel is None or not hasattr(channel, "history"):
            return None
        after = discord.Object(discord.utils.time_snowflake(dt.datetime.fromtimestamp(job.posted_at - 60, dt.UTC)))
        me = self.client.user.id if self.client.user else None
        try:
            async for message in channel.history(limit=HISTORY_LOOKBACK, after=after):
                texts = [message.content] + [e.footer.text or "" for e in message.embeds]
                if message.author.id == me and any(job.id in t for t in texts):
                    log.info("job %s was posted before the crash (message %s); not posting again", job.id, message.id)
                    return message.id
        except discord.HTTPException as exc:
            log.warning("could not look for an earlier post of job %s: %s", job.id, exc)
        return None


def _nonce(job: Job) -> int:
    """A nonce Discord enforces for a few minutes: the same job never posts twice in that time."""
    return int(job.id, 16) % (10**18)
