"""Discord's limits on what the bot sends, in one place, and the helpers that keep messages within them.

Every message the bot builds goes through `content` (plain text) or `fit_embed` (embeds), which
shorten long text with "…" instead of letting Discord refuse the whole message (400, code 50035).
The numbers are Discord's documented ones (Channel → Create Message, Embed Limits).
"""
from __future__ import annotations

import discord

CONTENT = 2000  # characters of a message's content
EMBED_TITLE = 256
EMBED_DESCRIPTION = 4096
FIELD_NAME = 256
FIELD_VALUE = 1024
FIELDS = 25  # per embed
FOOTER = 2048
AUTHOR_NAME = 256
EMBED_TOTAL = 6000  # title, description, field names and values, footer and author of all embeds together
ATTACHMENTS = 10  # files per message
UPLOAD_BY_PREMIUM_TIER = {0: 10 * 1024 * 1024, 1: 10 * 1024 * 1024, 2: 50 * 1024 * 1024, 3: 100 * 1024 * 1024}
ELLIPSIS = "…"
EMPTY = "—"  # Discord refuses an empty field value


def clip(text: object, limit: int) -> str:
    """``text`` as a string of at most ``limit`` characters, ending in "…" when shortened."""
    s = str(text)
    return s if len(s) <= limit else s[: max(0, limit - len(ELLIPSIS))] + ELLIPSIS


def content(text: str) -> str:
    """A message's content within `CONTENT`."""
    return clip(text, CONTENT)


def field_value(text: object) -> str:
    """A field's value: never empty, at most `FIELD_VALUE` characters."""
    s = str(text).strip()
    return clip(s, FIELD_VALUE) if s else EMPTY


def embed_size(embed: discord.Embed) -> int:
    """The characters of ``embed`` that count toward `EMBED_TOTAL` (discord.py's ``len(embed)``)."""
    return len(embed)


def fit_embed(embed: discord.Embed) -> discord.Embed:
    """Shorten ``embed`` in place to Discord's limits; returns it.

    Each part is clipped to its own limit; if the whole is still over `EMBED_TOTAL`, the footer
    gives way first, then the longest fields, then the description.
    """
    if embed.title:
        embed.title = clip(embed.title, EMBED_TITLE)
    if embed.description:
        embed.description = clip(embed.description, EMBED_DESCRIPTION)
    fields = [(clip(f.name, FIELD_NAME) or EMPTY, field_value(f.value), f.inline) for f in embed.fields][:FIELDS]
    embed.clear_fields()
    for name, value, inline in fields:
        embed.add_field(name=name, value=value, inline=inline)
    if embed.footer.text:
        embed.set_footer(text=clip(embed.footer.text, FOOTER), icon_url=embed.footer.icon_url)
    over = embed_size(embed) - EMBED_TOTAL
    if over > 0 and embed.footer.text:
        keep = max(len(ELLIPSIS), len(embed.footer.text) - over)
        embed.set_footer(text=clip(embed.footer.text, keep), icon_url=embed.footer.icon_url)
    while (over := embed_size(embed) - EMBED_TOTAL) > 0 and embed.fields:
        longest = max(range(len(embed.fields)), key=lambda i: len(embed.fields[i].value or ""))
        f = embed.fields[longest]
        if len(f.value or "") <= len(EMPTY):
            break
        embed.set_field_at(longest, name=f.name, value=clip(f.value, max(len(EMPTY), len(f.value or "") - over)),
                           inline=f.inline)
    if (over := embed_size(embed) - EMBED_TOTAL) > 0 and embed.description:
        embed.description = clip(embed.description, max(1, len(embed.description) - over))
    return embed


def upload_limit(configured: int, guild: discord.Guild | None) -> int:
    """Bytes one message may upload: the setting, and no more than the guild's boost tier allows."""
    if guild is None:
        return min(configured, UPLOAD_BY_PREMIUM_TIER[0])
    return min(configured, max(guild.filesize_limit, UPLOAD_BY_PREMIUM_TIER[0]))
