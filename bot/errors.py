"""The bot's error base. Every refusal the bot raises on purpose derives from `BotError`.

The tree-level handler (`bot.ui.tree.ChorusTree`) maps `BotError` and the engine's
`engine.errors.EngineError` to a short ephemeral reply, and logs anything else with its traceback.
This module imports nothing, so workers and the service can raise these without loading discord.
"""
from __future__ import annotations


class BotError(Exception):
    """A user-facing refusal from the bot (one line)."""


class ServiceError(BotError):
    """A refusal from the compose service, e.g. a full queue or a cooldown."""


class SeedUploadError(BotError):
    """A refusal about an uploaded seed file before it is read: too large, not downloadable, busy."""


class CatalogError(BotError):
    """A refusal about checkpoints (install, swap, unknown name)."""
