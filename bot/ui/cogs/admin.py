"""/chorus-admin: checkpoints, swaps, installs, removals, the queue, cancel, pause, resume, the audit log.

Who may run them is checked on the bot's side (`AdminCog.interaction_check`) against
CHORUS_ADMIN_USER_IDS and CHORUS_ADMIN_ROLE_IDS; every attempt is written to the audit log.
Who *sees* them is Discord's business: ``default_permissions(administrator=True)`` shows them
to server administrators only. A server shows them to an admin role too with an override:
Server Settings → Integrations → Chorus → /chorus-admin → Add Roles or Members (README,
"Run it on your server"). Members outside the lists who see them anyway are refused.
"""
from __future__ import annotations

import logging

import discord
from discord import app_commands
from discord.ext import commands

from bot.queues.policy import WorkerRow
from bot.service.compose import ComposeService
from bot.ui import limits
from bot.ui.tree import AdminOnly

log = logging.getLogger(__name__)


def worker_line(w: WorkerRow) -> str:
    """One line of ``/chorus-admin queue`` for a worker of either backend."""
    state = f"job {w.job} for {w.busy_s} s" if w.job else (w.error or "idle")
    return f"worker {w.name}: {'alive' if w.alive else 'down'}, {state}, restarts {w.restarts}"


def audit_text(entries: list[dict], limit: int = limits.CONTENT) -> str:
    """``/chorus-admin audit``: one line per entry, newest first, whole lines within ``limit``."""
    lines: list[str] = []
    size = 0
    for e in entries:
        detail = limits.clip(e.get("detail") or "", 120)
        line = (f"{'✅' if e['allowed'] else '⛔'} <t:{int(e['at'])}:f> <@{e['user_id']}> {e['action']}"
                + (f" {detail}" if detail not in ("", "{}") else ""))
        if size + len(line) + 1 > limit:
            break
        lines.append(line)
        size += len(line) + 1
    return "\n".join(lines) or "The audit log is empty."


def is_admin(interaction: discord.Interaction, admin_users: frozenset[int], admin_roles: frozenset[int]) -> bool:
    """Whether the user is listed, or holds a listed role. The guild's id is never an admin role:
    it is the id of @everyone, so listing it would make every member an admin."""
    if interaction.user.id in admin_users:
        return True
    roles = admin_roles - {interaction.guild_id}
    return any(r.id in roles for r in getattr(interaction.user, "roles", []))


@app_commands.default_permissions(administrator=True)
@app_commands.guild_only()
class AdminCog(commands.GroupCog, group_name="chorus-admin", group_description="Chorus administration"):
    def __init__(self, bot: commands.Bot, service: ComposeService) -> None:
        self.bot = bot
        self.service = service
        super().__init__()

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        s = self.service.settings
        allowed = is_admin(interaction, s.admin_user_ids, s.admin_role_ids)
        name = interaction.command.name if interaction.command else "?"
        options = {o["name"]: o.get("value") for o in (interaction.data or {}).get("options", [{}])[0].get("options", [])}
        await self.service.store.audit(interaction.user.id, interaction.guild_id, name, str(options), allowed)
        if not allowed:
            log.warning("user %s tried /chorus-admin %s", interaction.user.id, name)
            raise AdminOnly("not an admin")
        return True

    @app_commands.command(name="checkpoints", description="Installed checkpoints with style, metrics, size and hash")
    async def checkpoints(self, interaction: discord.Interaction) -> None:
        active = {ck.name: style for style, ck in self.service.catalog.styles().items()}
        catalog = self.service.catalog
        rows = [("▶ " if c.name in active else "• ") + c.describe() for c in catalog.installed()]
        rows += [f"✖ {name}: not usable ({why})"[:300] for name, why in sorted(catalog.broken.items())]
        await interaction.response.send_message(limits.content("\n".join(rows) or "No checkpoint is installed."), ephemeral=True)

    @app_commands.command(name="use", description="Serve a style with another installed checkpoint")
    async def use(self, interaction: discord.Interaction, style: str, checkpoint: str) -> None:
        described = await self.service.use(style.lower(), checkpoint, interaction.user.id)
        await interaction.response.send_message(limits.content(f"✅ {style} now uses {described}"), ephemeral=True)

    @app_commands.command(name="install", description="Install a checkpoint archive (zip or tar of model.safetensors + meta.json)")
    async def install(self, interaction: discord.Interaction, archive: discord.Attachment, name: str | None = None) -> None:
        limit = self.service.settings.max_checkpoint_bytes
        if archive.size > limit:
            await interaction.response.send_message(f"⚠️ The archive is {archive.size:,} bytes; at most {limit:,}.", ephemeral=True)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        data = await archive.read()
        installed = await self.service.catalog.install(data, archive.filename, name)
        await interaction.followup.send(limits.content(f"✅ Installed {installed.describe()}"), ephemeral=True)

    @app_commands.command(name="remove", description="Delete an installed checkpoint that serves no style")
    async def remove(self, interaction: discord.Interaction, name: str) -> None:
        await self.service.remove(name)
        await interaction.response.send_message(f"🗑 Removed checkpoint {name}.", ephemeral=True)

    @app_commands.command(name="queue", description="Pending and running jobs, and each worker's state")
    async def queue(self, interaction: discord.Interaction) -> None:
        q = await self.service.queue_summary()
        lines = [f"{'⏸ paused' if q['paused'] else '▶ accepting'} · pending {q['pending']} · running {q['running']}"
                 f" · open jobs {q['accepted_open']}"]
        monitor = getattr(self.bot, "loop_monitor", None)
        if monitor is not None:
            lines.append(f"event loop: longest stall {monitor.max_stall * 1000:.0f} ms")
        lines += [worker_line(w) for w in q["workers"]]
        jobs = await self.service.store.jobs(("queued", "running"))
        lines += [f"job {j.id}: {j.status}, {j.style} for <@{j.user_id}>" for j in jobs[:15]]
        await interaction.response.send_message(limits.content("\n".join(lines)), ephemeral=True)

    @app_commands.command(name="pause", description="Stop accepting new jobs")
    async def pause(self, interaction: discord.Interaction) -> None:
        await self.service.pause(True)
        await interaction.response.send_message("⏸ Paused: new requests are refused until /chorus-admin resume.", ephemeral=True)

    @app_commands.command(name="resume", description="Accept new jobs again")
    async def resume(self, interaction: discord.Interaction) -> None:
        await self.service.pause(False)
        await interaction.response.send_message("▶ Resumed.", ephemeral=True)

    @app_commands.command(name="cancel", description="Stop an unfinished job; its user is told it was cancelled")
    @app_commands.describe(job="the job's id, from /chorus-admin queue or the bot's log")
    async def cancel(self, interaction: discord.Interaction, job: str) -> None:
        cancelled = await self.service.cancel_by_admin(job)
        await interaction.response.send_message(limits.content(f"🛑 Cancelled job {cancelled.id} of <@{cancelled.user_id}>."),
                                                ephemeral=True)

    @app_commands.command(name="audit", description="The latest admin commands: who ran what, allowed or refused")
    @app_commands.describe(count="how many entries, newest first (default 15)")
    async def audit(self, interaction: discord.Interaction, count: app_commands.Range[int, 1, 50] = 15) -> None:
        entries = await self.service.store.audit_entries(count)
        await interaction.response.send_message(audit_text(entries), ephemeral=True)
