"""/compose, /styles and the "Continue with Chorus" message command."""
from __future__ import annotations

import logging

import discord
from discord import app_commands
from discord.ext import commands

from bot import limits
from bot.service import ComposeService, Submission
from bot.tree import defer_public, loading_done
from engine.conditioning import ERA_CHOICES
from engine.forms import FORM_CHOICES
from engine.request import ComposeRequest, RequestError

log = logging.getLogger(__name__)
MIDI_SUFFIXES = (".mid", ".midi")
DEFAULT_LENGTH = "30s"


class ComposeCog(commands.Cog):
    def __init__(self, bot: commands.Bot, service: ComposeService) -> None:
        self.bot = bot
        self.service = service
        self.menu = app_commands.ContextMenu(name="Continue with Chorus", callback=self.continue_menu)
        bot.tree.add_command(self.menu)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.menu.name, type=self.menu.type)

    async def style_autocomplete(self, interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
        return [app_commands.Choice(name=s, value=s) for s in self.service.styles() if current.lower() in s][:25]

    @app_commands.command(name="compose", description="Compose a clip: audio, MIDI and a picture of the notes")
    @app_commands.describe(style="jazz, folk, ...", length="e.g. 30s, 1m30s, 90", seed_midi="a MIDI file to continue",
                           tempo="beats per minute", changes="chords per bar, e.g. Dm7 G7 Cmaj7 Cmaj7",
                           temperature="lower is safer, higher is wilder", seed="repeat a clip exactly",
                           form="the song form (default: the style's)", key="e.g. Bb or F minor (default: the style's keys)",
                           swing="swing ratio: 1 straight, 2 triplet feel, up to 3 (default: by tempo)",
                           era="play it like this era of jazz (default: the mix of all)")
    @app_commands.choices(form=[app_commands.Choice(name=f, value=f) for f in FORM_CHOICES],
                          era=[app_commands.Choice(name=e, value=e) for e in ERA_CHOICES])
    @app_commands.autocomplete(style=style_autocomplete)
    async def compose(self, interaction: discord.Interaction, style: str, length: str = DEFAULT_LENGTH,
                      seed_midi: discord.Attachment | None = None, tempo: float | None = None,
                      changes: str | None = None, temperature: float | None = None, seed: int | None = None,
                      form: str | None = None, key: str | None = None,
                      swing: app_commands.Range[float, 1.0, 3.0] | None = None, era: str | None = None) -> None:
        req = self.service.request(style, length, tempo=tempo, changes=changes, temperature=temperature, seed=seed,
                                   form=form, key=key, swing=swing, era=era)
        if seed_midi is None:
            await self._accept(interaction, req)
        else:  # after the cheap checks, so a bad value is refused at once, before any download
            await self._accept_seeded(interaction, req, seed_midi)

    async def continue_menu(self, interaction: discord.Interaction, message: discord.Message) -> None:
        attachment = next((a for a in message.attachments if a.filename.lower().endswith(MIDI_SUFFIXES)), None)
        if attachment is None:
            raise RequestError("that message has no .mid attachment to continue")
        styles = self.service.styles()
        if not styles:
            raise RequestError("no style is installed")
        req = self.service.request("jazz" if "jazz" in styles else styles[0], DEFAULT_LENGTH)
        await self._accept_seeded(interaction, req, attachment)

    @app_commands.command(name="styles", description="The styles Chorus can play and the checkpoint behind each")
    async def styles(self, interaction: discord.Interaction) -> None:
        rows = [f"**{style}**: {ck.describe()}" for style, ck in sorted(self.service.catalog.styles().items())]
        await interaction.response.send_message(limits.content("\n".join(rows) or "No style is installed."), ephemeral=True)

    def _submission(self, interaction: discord.Interaction, req: ComposeRequest) -> Submission:
        return Submission(req, user_id=interaction.user.id, guild_id=interaction.guild_id,
                          channel_id=interaction.channel_id, application_id=interaction.application_id,
                          interaction_token=interaction.token)

    async def _accept(self, interaction: discord.Interaction, req: ComposeRequest) -> None:
        job, position = await self.service.submit(self._submission(interaction, req))
        await interaction.response.send_message(queued_text(req, position))
        try:
            message = await interaction.original_response()
            await self.service.set_status_message(job.id, message.id)
        except discord.HTTPException as exc:
            log.info("no status message for job %s: %s", job.id, exc)

    async def _accept_seeded(self, interaction: discord.Interaction, req: ComposeRequest,
                             attachment: discord.Attachment) -> None:
        """Defer publicly first, as the limits, the download and the check may outlast Discord's
        3 s; the "thinking" message then becomes the job's status message. A refusal after the
        defer stays private (`bot.tree.reply`)."""
        self.service.seeds.check_declared_size(attachment.size)
        await defer_public(interaction)
        job, position = await self.service.submit_with_seed(self._submission(interaction, req), attachment.url)
        try:
            message = await interaction.edit_original_response(content=queued_text(req, position))
            loading_done(interaction)
            await self.service.set_status_message(job.id, message.id)
        except discord.HTTPException as exc:  # the job is queued; the clip comes as a follow-up
            log.info("no status message for job %s: %s", job.id, exc)


def queued_text(req: ComposeRequest, position: int) -> str:
    where = "next up" if position <= 1 else f"position {position} in the queue"
    return limits.content(f"⏳ Queued your {req.style} clip ({where}).")
