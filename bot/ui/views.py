"""The buttons under a clip (Another take, Continue, Variation, Sheet) and under a queued request (Cancel).

Each button is a `ClipButton`, a `discord.ui.DynamicItem` whose ``custom_id`` carries the action
and the job id (``chorus:again:<job id>``). The bot registers the class in ``setup_hook``
(`bot.ui.app`), so a press on any message, from before a restart too, is routed by its ``custom_id``
alone. A press is dispatched as the ``chorus_button`` event, handled by `bot.ui.cogs.jam.JamCog`.
"""
from __future__ import annotations

import discord

ACTIONS = {  # action -> (label, emoji, button style)
    "again": ("Another take", "🎲", discord.ButtonStyle.primary),
    "more": ("Continue", "⏩", discord.ButtonStyle.secondary),
    "vary": ("Variation", "🎼", discord.ButtonStyle.secondary),
    "sheet": ("Sheet", "📄", discord.ButtonStyle.secondary),
    "cancel": ("Cancel", "✖️", discord.ButtonStyle.danger),
}
CLIP_ACTIONS = ("again", "more", "vary", "sheet")
TEMPLATE = r"chorus:(?P<action>again|more|vary|sheet|cancel):(?P<job>[0-9A-Za-z]{1,64})"


def custom_id(action: str, job_id: str) -> str:
    return f"chorus:{action}:{job_id}"


class ClipButton(discord.ui.DynamicItem[discord.ui.Button], template=TEMPLATE):
    """One button, for one job; it survives restarts (no state but its ``custom_id``)."""

    def __init__(self, action: str, job_id: str) -> None:
        label, emoji, style = ACTIONS[action]
        super().__init__(discord.ui.Button(label=label, emoji=emoji, style=style,
                                           custom_id=custom_id(action, job_id)))
        self.action = action
        self.job_id = job_id

    @classmethod
    async def from_custom_id(cls, interaction: discord.Interaction, item: discord.ui.Button,
                             match: object) -> ClipButton:
        return cls(match["action"], match["job"])  # type: ignore[index]

    async def callback(self, interaction: discord.Interaction) -> None:
        interaction.client.dispatch("chorus_button", interaction, self.action, self.job_id)


def _view(job_id: str, actions: tuple[str, ...]) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    for action in actions:
        view.add_item(ClipButton(action, job_id))
    return view


def clip_view(job_id: str) -> discord.ui.View:
    """The buttons under a delivered clip."""
    return _view(job_id, CLIP_ACTIONS)


def queued_view(job_id: str) -> discord.ui.View:
    """The Cancel button under a queued request's status message."""
    return _view(job_id, ("cancel",))
