"""The Chorus Discord bot: the Discord surface (`bot.ui`), the job service (`bot.service`), what it
keeps (`bot.store`) and its worker queues (`bot.queues`), over the engine.

The entry points: `serve` (``chorus serve``), `ComposeService` (the service the cogs call) and
`BotSettings` (every setting, from the environment and ``.env``).
"""
import lazy_loader as lazy

__getattr__, __dir__, __all__ = lazy.attach(__name__, submod_attrs={
    "ui": ["serve"],
    "service": ["ComposeService"],
    "settings": ["BotSettings"],
})
