"""Slash-command cogs: thin layers over `bot.service.compose`."""
