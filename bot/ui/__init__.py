"""The Discord surface: the client and its command tree, the cogs, views and buttons, delivery
of clips, Discord's limits and the words of /help.

The only package that imports ``discord``; it calls `bot.service` and never does the work itself.
"""
import lazy_loader as lazy

# the public names, each imported from its module on first use (a light import for the bot)
__getattr__, __dir__, __all__ = lazy.attach(__name__, submod_attrs={
    "app": ["ChorusBot", "serve", "LoopMonitor", "DiscordUnreachable"],
    "tree": ["ChorusTree"],
    "delivery": ["DiscordDeliverer", "clip_embed"],
    "limits": ["fit_embed", "content"],
})
