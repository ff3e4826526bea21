"""The bot's one error path: domain errors become a short ephemeral reply; the rest are logged.

A command that may take longer than Discord's 3 s defers with `defer_public` (a public "thinking"
message); until it calls `loading_done`, a refusal deletes that message and goes out as an
ephemeral follow-up, since on Discord the first follow-up after a defer would replace the public
loading message and lose its ephemeral flag.
"""
from __future__ import annotations

import logging

import discord
from discord import app_commands

from bot.errors import BotError
from bot.ui import limits
from engine.errors import EngineError

log = logging.getLogger(__name__)


PUBLIC_LOADING = "chorus_public_loading"  # interaction.extras key: the original is a public "thinking" message


class AdminOnly(app_commands.CheckFailure):
    """A non-admin called an admin command."""


async def defer_public(interaction: discord.Interaction) -> None:
    """Acknowledge now with a public "thinking" message, to be edited into the answer."""
    await interaction.response.defer(thinking=True)
    interaction.extras[PUBLIC_LOADING] = True


def loading_done(interaction: discord.Interaction) -> None:
    """The public "thinking" message has been edited into the answer; `reply` leaves it alone."""
    interaction.extras.pop(PUBLIC_LOADING, None)


async def reply(interaction: discord.Interaction, text: str) -> None:
    """An ephemeral one-line reply, whether or not the interaction was answered already."""
    text = limits.content(text.splitlines()[0]) if text.strip() else "something went wrong"
    try:
        if interaction.extras.pop(PUBLIC_LOADING, False):
            try:
                await interaction.delete_original_response()
            except discord.HTTPException as exc:  # then the follow-up replaces it, publicly
                log.warning("could not delete the loading message of interaction %s: %s", interaction.id, exc)
            await interaction.followup.send(text, ephemeral=True)
        elif interaction.response.is_done():
            await interaction.followup.send(text, ephemeral=True)
        else:
            await interaction.response.send_message(text, ephemeral=True)
    except discord.HTTPException as exc:
        log.warning("could not reply to interaction %s: %s", interaction.id, exc)


async def report(interaction: discord.Interaction, cause: BaseException, where: str) -> None:
    """The one error path (commands, buttons, modals): a domain error becomes a short ephemeral
    reply; anything else is logged with its traceback and gets a generic line."""
    if isinstance(cause, AdminOnly):
        await reply(interaction, "⛔ This command is for Chorus admins.")
    elif isinstance(cause, EngineError | BotError):
        await reply(interaction, f"⚠️ {cause}")
    elif isinstance(cause, app_commands.TransformerError | app_commands.CheckFailure):
        await reply(interaction, f"⚠️ {cause}")
    else:
        log.error("unexpected error in %s", where, exc_info=cause)
        await reply(interaction, "⚠️ Something went wrong on our side; it has been logged.")


class ChorusTree(app_commands.CommandTree):
    async def on_error(self, interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        cause = error.original if isinstance(error, app_commands.CommandInvokeError) else error
        await report(interaction, cause, f"/{interaction.command.qualified_name if interaction.command else '?'}")
