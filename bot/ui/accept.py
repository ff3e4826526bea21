"""Accepting a request from any interaction (/compose, a button under a clip, the Continue modal):
the same limits, queue position, wait estimate (`bot.service.estimate`) and status message for each.

The status message carries a Cancel button (`bot.ui.views`) until the clip replaces it.
"""
from __future__ import annotations

import logging

import discord

from bot.service.compose import ComposeService, Submission
from bot.ui.delivery import queued_text
from bot.ui.tree import defer_public, loading_done
from bot.ui.views import queued_view
from engine.compose.request import ComposeRequest

log = logging.getLogger(__name__)


def submission(interaction: discord.Interaction, req: ComposeRequest, checkpoint: str | None = None) -> Submission:
    """The request and who asked: the limits are the asker's (for a button, the presser's)."""
    return Submission(req, user_id=interaction.user.id, guild_id=interaction.guild_id,
                      channel_id=interaction.channel_id, application_id=interaction.application_id,
                      interaction_token=interaction.token, checkpoint=checkpoint)


async def accept(service: ComposeService, interaction: discord.Interaction, req: ComposeRequest,
                 checkpoint: str | None = None) -> None:
    """Submit, then answer with the public status message (a new message, also for a button)."""
    job, position = await service.submit(submission(interaction, req, checkpoint))
    wait = await service.wait()
    await interaction.response.send_message(queued_text(req.style, position, wait), view=queued_view(job.id))
    try:
        message = await interaction.original_response()
        await service.set_status_message(job.id, message.id, position, wait)
    except discord.HTTPException as exc:
        log.info("no status message for job %s: %s", job.id, exc)


async def accept_seeded(service: ComposeService, interaction: discord.Interaction, req: ComposeRequest,
                        attachment: discord.Attachment) -> None:
    """Defer publicly first, as the limits, the download and the check may outlast Discord's
    3 s; the "thinking" message then becomes the job's status message. A refusal after the
    defer stays private (`bot.ui.tree.reply`)."""
    service.seeds.check_declared_size(attachment.size)
    await defer_public(interaction)
    job, position = await service.submit_with_seed(submission(interaction, req), attachment.url)
    wait = await service.wait()
    try:
        message = await interaction.edit_original_response(content=queued_text(req.style, position, wait),
                                                           view=queued_view(job.id))
        loading_done(interaction)
        await service.set_status_message(job.id, message.id, position, wait)
    except discord.HTTPException as exc:  # the job is queued; the clip comes as a follow-up
        log.info("no status message for job %s: %s", job.id, exc)
