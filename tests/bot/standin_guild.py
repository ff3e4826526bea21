"""The stand-in's guild: its members, roles (with Discord's permission bits) and channels, and the
GUILD_CREATE payload that describes them.

Mixed into `tests.bot.standin.DiscordStandIn`; nothing here imports discord.py.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

Json = dict[str, Any]
ADMINISTRATOR, MANAGE_GUILD = 1 << 3, 1 << 5
# add reactions, view channel, send messages, embed links, attach files, read history,
# external emojis, use application commands
EVERYONE_PERMISSIONS = sum(1 << b for b in (6, 10, 11, 14, 15, 16, 18, 31))
ALL_PERMISSIONS = (1 << 50) - 1


def _id(obj: Json | str | int) -> str:
    return str(obj["id"]) if isinstance(obj, dict) else str(obj)


class GuildMixin:
    """Members, roles and channels of the stand-in's one guild (state set up by `DiscordStandIn`)."""

    users: dict[str, Json]
    member_roles: dict[str, list[str]]
    roles: dict[str, Json]
    channels: dict[str, Json]
    guild_id: str
    everyone_role: Json
    owner: Json
    channel: Json

    snowflake: Callable[[], str]  # DiscordStandIn's: a new id

    @staticmethod
    def _user(user_id: str, name: str) -> Json:
        return {"id": user_id, "username": name, "global_name": name, "discriminator": "0",
                "avatar": None, "bot": False, "public_flags": 0}

    def add_user(self, name: str, roles: Iterable[Json | str] = ()) -> Json:
        """Add a member user to the guild, with ``roles`` (role dicts or ids); returns the user dict."""
        user = self._user(self.snowflake(), name)
        self.users[user["id"]] = user
        self.member_roles[user["id"]] = []
        self.give_roles(user, *roles)
        return user

    def add_role(self, name: str, permissions: int = 0, *, managed: bool = False, role_id: str | None = None) -> Json:
        """Add a guild role; ``permissions`` is Discord's permission bit field."""
        role = {"id": role_id or self.snowflake(), "name": name, "permissions": str(permissions),
                "position": len(self.roles), "color": 0, "hoist": False, "managed": managed,
                "mentionable": False, "flags": 0, "icon": None, "unicode_emoji": None}
        self.roles[role["id"]] = role
        return role

    def give_roles(self, user: Json | str, *roles: Json | str) -> None:
        """Give a member more roles (the next interaction carries them)."""
        held = self.member_roles[_id(user)]
        held.extend(r for r in map(_id, roles) if r not in held and r != self.guild_id)

    def add_channel(self, name: str) -> Json:
        """Add a text channel to the guild; returns the channel dict."""
        channel = {"id": self.snowflake(), "type": 0, "guild_id": self.guild_id, "name": name,
                   "position": len(self.channels), "permission_overwrites": [],
                   "nsfw": False, "topic": None, "parent_id": None, "rate_limit_per_user": 0,
                   "last_message_id": None}
        self.channels[channel["id"]] = channel
        return channel

    def permissions(self, user: Json | str) -> int:
        """The member's guild-wide permission bits, as Discord computes them without overwrites."""
        user_id = _id(user)
        bits = int(self.everyone_role["permissions"])
        for role_id in self.member_roles.get(user_id, []):
            bits |= int(self.roles[role_id]["permissions"])
        return ALL_PERMISSIONS if user_id == self.owner["id"] or bits & ADMINISTRATOR else bits

    def member(self, user: Json | str, with_permissions: bool = False) -> Json:
        """The guild member payload of a user."""
        user_id = _id(user)
        member = {"user": self.users[user_id], "roles": list(self.member_roles[user_id]), "nick": None,
                  "avatar": None, "joined_at": "2024-01-01T00:00:00+00:00", "premium_since": None,
                  "deaf": False, "mute": False, "flags": 0, "pending": False,
                  "communication_disabled_until": None}
        if with_permissions:
            member["permissions"] = str(self.permissions(user_id))
        return member

    def guild_payload(self) -> Json:
        """The GUILD_CREATE payload: the guild with its roles, channels and members."""
        return {"id": self.guild_id, "name": "Chorus Test Guild", "owner_id": self.owner["id"],
                "roles": list(self.roles.values()), "channels": list(self.channels.values()),
                "members": [self.member(uid) for uid in self.member_roles],
                "member_count": len(self.member_roles), "large": False, "unavailable": False,
                "joined_at": "2024-01-01T00:00:00+00:00", "features": [], "emojis": [], "stickers": [],
                "threads": [], "presences": [], "voice_states": [], "stage_instances": [],
                "guild_scheduled_events": [], "soundboard_sounds": [], "preferred_locale": "en-US",
                "premium_tier": 0, "system_channel_id": self.channel["id"], "afk_timeout": 300,
                "verification_level": 0, "default_message_notifications": 0, "mfa_level": 0,
                "explicit_content_filter": 0, "nsfw_level": 0, "icon": None, "description": None}
