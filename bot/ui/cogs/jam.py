"""Presses on the buttons under a clip and under a queued request (`bot.ui.views`).

Each clip button is a new request, accepted as /compose accepts one (`bot.ui.accept`): the same
limits, cooldown, queue position and progress, charged to whoever pressed (jamming on someone
else's clip is allowed). Cancel is for the request's owner only.
"""
from __future__ import annotations

import logging

import discord
from discord.ext import commands

from bot.errors import ServiceError
from bot.service import jam
from bot.service.compose import ComposeService
from bot.ui import limits
from bot.ui.accept import accept
from bot.ui.tree import report

log = logging.getLogger(__name__)


class JamCog(commands.Cog):
    def __init__(self, bot: commands.Bot, service: ComposeService) -> None:
        self.bot = bot
        self.service = service

    @commands.Cog.listener()
    async def on_chorus_button(self, interaction: discord.Interaction, action: str, job_id: str) -> None:
        try:
            if action == "cancel":
                await self._cancel(interaction, job_id)
            elif action == "sheet":
                await self._sheet(interaction, job_id)
            else:
                await self._jam(interaction, action, job_id)
        except Exception as exc:  # the one error path, as for commands
            await report(interaction, exc, f"the {action} button of job {job_id}")

    async def _cancel(self, interaction: discord.Interaction, job_id: str) -> None:
        job = await self.service.cancel(job_id, interaction.user.id, interaction.guild_id)
        text = limits.content(f"🚫 Cancelled: your {job.style} request (job `{job.id}`).")
        await interaction.response.edit_message(content=text, embed=None, view=None)

    async def _sheet(self, interaction: discord.Interaction, job_id: str) -> None:
        """The clip's lead sheet, PNG and MusicXML, as a reply (set by a worker on the first press)."""
        job = await self.service.store.get_job(job_id)
        if job is None or job.status != "delivered" or job.guild_id != interaction.guild_id:
            raise ServiceError("that clip is not known here any more")
        await interaction.response.defer(thinking=True)
        png, xml = await self.service.sheets.sheet(job)
        files = [discord.File(png, filename=f"chorus-{job.style}-{job.id}-sheet.png"),
                 discord.File(xml, filename=f"chorus-{job.style}-{job.id}.musicxml")]
        await interaction.followup.send(content=limits.content(f"📄 Lead sheet of the {job.style} clip (job `{job.id}`)"),
                                        files=files)

    async def _jam(self, interaction: discord.Interaction, action: str, job_id: str) -> None:
        job = await self.service.store.get_job(job_id)
        # a button names a job of this guild (a forged id naming another guild's is refused alike)
        if job is None or job.status != "delivered" or job.guild_id != interaction.guild_id:
            raise ServiceError("that clip is not known here any more")
        if action == "again":
            await accept(self.service, interaction, jam.another_take(job))
        elif action == "vary":
            await accept(self.service, interaction, jam.variation(job))
        else:
            await accept(self.service, interaction, await jam.continuation(job), checkpoint=job.checkpoint)
