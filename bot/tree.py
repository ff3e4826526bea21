"""The bot's one error path: domain errors become a short ephemeral reply; the rest are logged."""
from __future__ import annotations

import logging

import discord
from discord import app_commands

from bot.errors import BotError
from engine.errors import EngineError

log = logging.getLogger(__name__)


class AdminOnly(app_commands.CheckFailure):
    """A non-admin called an admin command."""


async def reply(interaction: discord.Interaction, text: str) -> None:
    """An ephemeral one-line reply, whether or not the interaction was answered already."""
    text = text.splitlines()[0][:1900] if text else "something went wrong"
    try:
        if interaction.response.is_done():
            await interaction.followup.send(text, ephemeral=True)
        else:
            await interaction.response.send_message(text, ephemeral=True)
    except discord.HTTPException as exc:
        log.warning("could not reply to interaction %s: %s", interaction.id, exc)


class ChorusTree(app_commands.CommandTree):
    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        cause = error.original if isinstance(error, app_commands.CommandInvokeError) else error
        if isinstance(cause, AdminOnly):
            await reply(interaction, "⛔ This command is for Chorus admins.")
        elif isinstance(cause, EngineError | BotError):
            await reply(interaction, f"⚠️ {cause}")
        elif isinstance(cause, app_commands.TransformerError | app_commands.CheckFailure):
            await reply(interaction, f"⚠️ {cause}")
        else:
            log.error("unexpected error in /%s", interaction.command.qualified_name if interaction.command else "?",
                      exc_info=cause)
            await reply(interaction, "⚠️ Something went wrong on our side; it has been logged.")
