"""A local stand-in for Discord's REST API and gateway that the unmodified discord.py client talks to.

Point discord.py at it by configuration only::

    discord.http.Route.BASE = standin.api_base                      # "http://127.0.0.1:PORT/api/v10"
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(standin.gateway_url)

It plays one application (its bot user), one guild with @everyone, "admin" and the bot's managed
role, a text channel and the member users a test adds. Tests send slash commands and context-menu
commands as INTERACTION_CREATE dispatches and read back ``events``: every HTTP request the bot made,
with its JSON body and uploaded files. Discord's rules that a user would notice are kept: an
interaction must be acknowledged within ``ack_deadline_s`` (404 "Unknown interaction" after), only
once (400, code 40060), and the first follow-up after a "thinking" defer replaces the loading message
and keeps the defer's ephemeral flag. Nothing here imports discord.py.
"""
from __future__ import annotations

import asyncio
import itertools
import logging
import mimetypes
import re
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.bot.standin_components import ComponentsMixin
from tests.bot.standin_gateway import Event, Gateway, GatewaySession
from tests.bot.standin_guild import EVERYONE_PERMISSIONS, MANAGE_GUILD, GuildMixin, _id
from tests.bot.standin_limits import mentions
from tests.bot.standin_rest import LOADING, Rest

log = logging.getLogger(__name__)

Json = dict[str, Any]
DISCORD_EPOCH_MS = 1_420_070_400_000
APPLICATION_FLAGS = (1 << 15) | (1 << 19)  # members and message-content intents "limited"
ATTACHMENT_SIZE_LIMIT = 10 * 1024 * 1024  # bytes per request, an unboosted guild's
CONTENT_TYPES = {".mid": "audio/midi", ".midi": "audio/midi"}  # where mimetypes disagrees with Discord


def _now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class InteractionRecord:
    """One INTERACTION_CREATE this stand-in sent, and what became of it.

    ``sent_at`` and ``acked_at`` are ``time.monotonic()`` seconds; ``message_ids`` lists the messages
    the interaction produced (original response first), whose current state ``messages_for`` returns.
    """

    id: str
    token: str
    name: str
    payload: Json
    sent_at: float = 0.0
    acked_at: float | None = None  # when the first callback arrived (None: not acknowledged)
    callback_type: int | None = None  # 4 message, 5 deferred ("thinking"), 6/7 update, 9 modal
    original_id: str | None = None
    message_ids: list[str] = field(default_factory=list)

    @property
    def ack_seconds(self) -> float | None:
        """Seconds from dispatch to the first callback, or None if there was none."""
        return None if self.acked_at is None else self.acked_at - self.sent_at


class DiscordStandIn(ComponentsMixin, GuildMixin):
    """An aiohttp server playing Discord for one bot; see the module docstring.

    Args:
        token: the bot token login and IDENTIFY must present.
        ack_deadline_s: how long after dispatch a callback is still accepted (None: forever).
        attachment_size_limit: bytes one request may upload (also sent in each interaction).
    """

    def __init__(
        self,
        token: str = "stand-in-token",
        ack_deadline_s: float | None = 3.0,
        attachment_size_limit: int = ATTACHMENT_SIZE_LIMIT,
    ) -> None:
        self.token = token
        self.application_flags = APPLICATION_FLAGS
        self.ack_deadline_s = ack_deadline_s
        self.attachment_size_limit = attachment_size_limit
        self._ids = itertools.count()
        self.application_id = self.snowflake()
        self.bot_user: Json = {**self._user(self.application_id, "Chorus"), "bot": True}
        self.users: dict[str, Json] = {}
        self.member_roles: dict[str, list[str]] = {}  # user id -> role ids (members of the guild)
        self.guild_id = self.snowflake()
        self.roles: dict[str, Json] = {}  # role id -> role
        self.everyone_role = self.add_role("@everyone", EVERYONE_PERMISSIONS, role_id=self.guild_id)
        self.admin_role = self.add_role("admin", MANAGE_GUILD)
        self.bot_role = self.add_role("Chorus", EVERYONE_PERMISSIONS, managed=True)
        self.bot_role["tags"] = {"bot_id": self.application_id}
        self.users[self.application_id] = self.bot_user
        self.member_roles[self.application_id] = [self.bot_role["id"]]
        self.owner = self.add_user("owner")
        self.channels: dict[str, Json] = {}
        self.channel: Json = self.add_channel("general")
        self.commands: dict[str | None, list[Json]] = {}  # guild id (None: global) -> synced commands
        self.messages: dict[str, Json] = {}
        self.interactions: dict[str, InteractionRecord] = {}
        self.events: list[Json] = []
        self._files: dict[str, tuple[bytes, str]] = {}  # attachment id -> (data, content type)
        self.nonces: dict[tuple[str, str], tuple[float, str]] = {}  # (channel, nonce) -> (monotonic s, message id)
        self.hold: Callable[[Json], bool] | None = None  # requests whose answer waits for `release`
        self.held = asyncio.Event()  # set when a request is being held
        self._release = asyncio.Event()
        self._changed = asyncio.Condition()
        self.gateway = Gateway(token, self._identify_events, self._member_chunk)
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # ---- server lifecycle -------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve on ``host``:``port`` (0: a free port); ``base_url`` then says where."""
        app = Rest(self).app(client_max_size=4 * self.attachment_size_limit)
        self._runner = web.AppRunner(app, shutdown_timeout=2.0, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        bound_host, bound_port = self._runner.addresses[0][:2]
        self.base_url = f"http://{bound_host}:{bound_port}"

    async def stop(self) -> None:
        """Close every gateway socket and the server. Close the bot's client first, or it reconnects."""
        await self.gateway.disconnect_all(code=1001)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def api_base(self) -> str:
        """The value for ``discord.http.Route.BASE``."""
        return f"{self.base_url}/api/v10"

    @property
    def gateway_url(self) -> str:
        """The URL for ``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY``."""
        return self.base_url.replace("http://", "ws://", 1) + "/gateway"

    async def wait_until_connected(self, identifies: int = 1, timeout: float = 10.0) -> None:
        """Wait for the ``identifies``-th IDENTIFY (2 after one restart) with its socket open.

        Raises:
            TimeoutError: the bot did not connect within ``timeout`` seconds.
        """
        await self.gateway.wait_online(timeout, identifies)

    async def disconnect_all(self, code: int = 4000) -> None:
        """Drop every gateway connection; discord.py comes back with RESUME (or a new IDENTIFY)."""
        await self.gateway.disconnect_all(code)

    # ---- identities -------------------------------------------------------------------------

    def snowflake(self) -> str:
        """A new, increasing snowflake id as Discord writes them (a decimal string)."""
        ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        return str((ms << 22) | (next(self._ids) & 0x3FFFFF))

    def _identify_events(self, session: GatewaySession) -> list[Event]:
        ready = {"v": 10, "user": {**self.bot_user, "verified": True, "mfa_enabled": False, "flags": 0},
                 "guilds": [{"id": self.guild_id, "unavailable": True}], "session_id": session.session_id,
                 "resume_gateway_url": self.gateway_url, "session_type": "normal", "shard": [0, 1],
                 "application": {"id": self.application_id, "flags": self.application_flags},
                 "private_channels": [], "relationships": [], "presences": [], "user_settings": {},
                 "geo_ordered_rtc_regions": [], "guild_join_requests": [], "_trace": ["stand-in"]}
        return [("READY", ready), ("GUILD_CREATE", self.guild_payload())]

    def _member_chunk(self, request: Json) -> list[Event]:
        members = [self.member(uid) for uid in self.member_roles]
        return [("GUILD_MEMBERS_CHUNK", {"guild_id": self.guild_id, "members": members, "chunk_index": 0,
                                         "chunk_count": 1, "not_found": [], "nonce": request.get("nonce")})]

    # ---- messages and attachments -----------------------------------------------------------

    def add_attachment(self, filename: str, data: bytes, content_type: str | None = None, *,
                       size: int | None = None) -> Json:
        """Register a file the bot can download; returns the attachment dict (url on this server).

        ``size`` is the size the attachment claims (default: the real one), to play a file that lies.
        A download's event records ``served``: the bytes written before it ended or the bot hung up.

        Raises:
            RuntimeError: the server is not started, so there is no URL yet.
        """
        if not self.base_url:
            raise RuntimeError("start() the stand-in before adding attachments: their URLs need its port")
        suffix = ("." + filename.rsplit(".", 1)[-1].lower()) if "." in filename else ""
        content_type = content_type or CONTENT_TYPES.get(suffix) or mimetypes.guess_type(filename)[0]
        attachment_id = self.snowflake()
        url = f"{self.base_url}/attachments/{attachment_id}/{filename}"
        self._files[attachment_id] = (bytes(data), content_type or "application/octet-stream")
        return {"id": attachment_id, "filename": filename, "size": len(data) if size is None else size,
                "url": url, "proxy_url": url,
                "content_type": content_type or "application/octet-stream"}

    def add_message(self, channel: Json | None, author: Json, content: str = "",
                    attachments: Iterable[Json] = ()) -> Json:
        """Put a message from ``author`` in a channel (no gateway event), e.g. to target with a context menu."""
        message = self._message((channel or self.channel)["id"], author, {"content": content}, [])
        message["attachments"] = list(attachments)
        return message

    async def _hold_request(self, event: Json) -> None:
        """Answer a request only once `release` is called: the bot may be killed meanwhile."""
        self.held.set()
        await self._release.wait()

    def release(self) -> None:
        """Let held requests answer, and hold no more."""
        self.hold = None
        self._release.set()

    def _mentions(self, message: Json, allowed: Json | None) -> None:
        everyone, users, roles = mentions(message["content"], allowed, set(self.roles))
        message.update(mention_everyone=everyone, mentions=[self.users[u] for u in users if u in self.users],
                       mention_roles=roles)

    def _message(self, channel_id: str, author: Json, body: Json, files: list[Json],
                 record: InteractionRecord | None = None, flags: int = 0) -> Json:
        message = {"id": self.snowflake(), "type": 0, "channel_id": channel_id, "author": author,
                   "content": body.get("content") or "", "timestamp": _now(), "edited_timestamp": None,
                   "tts": bool(body.get("tts")), "mention_everyone": False, "mentions": [], "mention_roles": [],
                   "attachments": self._attachments(body, files, []), "embeds": body.get("embeds") or [],
                   "components": body.get("components") or [], "pinned": False, "flags": flags}
        if record is not None:
            kind = record.payload["data"].get("type") if record.payload["type"] == 2 else None
            message.update(type={1: 20, None: 0}.get(kind, 23),
                           webhook_id=self.application_id, application_id=self.application_id)
            record.message_ids.append(message["id"])
        self._mentions(message, body.get("allowed_mentions"))
        self.messages[message["id"]] = message
        return message

    def _edit(self, message: Json, body: Json, files: list[Json]) -> Json:
        for key, empty in (("content", ""), ("embeds", []), ("components", [])):
            if key in body:
                message[key] = body[key] if body[key] is not None else empty
        if "attachments" in body or files:
            message["attachments"] = self._attachments(body, files, message["attachments"])
        message["flags"] &= ~LOADING
        message["edited_timestamp"] = _now()
        if "content" in body:
            self._mentions(message, body.get("allowed_mentions"))
        return message

    def _attachments(self, body: Json, files: list[Json], existing: list[Json]) -> list[Json]:
        """The attachments a create or edit leaves: kept ones by id, new uploads by ``files[n]`` index."""
        kept = {a["id"]: a for a in existing}
        uploads = {int(re.sub(r"\D", "", f["field"]) or i): f for i, f in enumerate(files)}
        listed = body.get("attachments")
        if listed is None:
            listed = [{"id": a["id"]} for a in existing] + [{"id": n} for n in uploads]
        out = []
        for entry in listed:
            if str(entry.get("id")) in kept:
                out.append(kept[str(entry["id"])])
            elif (upload := uploads.get(int(entry.get("id", -1)))) is not None:
                out.append(self.add_attachment(entry.get("filename") or upload["filename"], upload["data"]))
        return out

    # ---- interactions -----------------------------------------------------------------------

    async def send_slash_command(self, name: str, options: Iterable[Json], user: Json,
                                 channel: Json | None = None, guild: Json | None = None,
                                 attachments: dict[str, Json] | None = None,
                                 group: str | None = None) -> InteractionRecord:
        """Dispatch a chat-input command as the user would invoke it.

        Args:
            options: ``{"name", "value"}`` dicts; ``type`` is inferred when left out (a user, role
                or channel dict as value stands for its id).
            attachments: option name -> an ``add_attachment`` dict, for attachment options.
            group: the subcommand path under ``name``: ``"use"`` or ``"group sub"``.

        Raises:
            LookupError: the bot has not synced a command of that name.
        """
        opts = [self._option(o) for o in options]
        resolved: Json = {}
        for opt_name, attachment in (attachments or {}).items():
            opts.append({"name": opt_name, "type": 11, "value": attachment["id"]})
            resolved.setdefault("attachments", {})[attachment["id"]] = attachment
        for opt in opts:  # Discord resolves users (with their member), roles and channels
            value = opt["value"]
            if opt["type"] == 6:
                resolved.setdefault("users", {})[value] = self.users[value]
                member = {k: v for k, v in self.member(value, True).items() if k != "user"}
                resolved.setdefault("members", {})[value] = member
            elif opt["type"] == 8:
                resolved.setdefault("roles", {})[value] = self.roles[value]
            elif opt["type"] == 7:
                channel_perms = str(self.permissions(user))
                resolved.setdefault("channels", {})[value] = {**self.channels[value], "permissions": channel_perms}
        parts = (group or "").split()
        for depth, part in enumerate(reversed(parts)):
            opts = [{"name": part, "type": 1 if depth == 0 else 2, "options": opts}]
        data = {"name": name, "type": 1, "options": opts, "resolved": resolved}
        return await self._interact(data, user, channel, guild)

    async def send_autocomplete(self, name: str, options: Iterable[Json], focused: str, user: Json) -> InteractionRecord:
        """Dispatch an autocomplete request (type 4) for option ``focused`` of ``name``, as Discord
        sends one while the user types; the bot answers with a type-8 callback (``data.choices``)."""
        opts = [{**self._option(o), **({"focused": True} if o["name"] == focused else {})} for o in options]
        command = self._find_command(name, 1)
        data = {"name": name, "type": 1, "options": opts, "id": command["id"], "guild_id": command.get("guild_id")}
        return await self._dispatch(4, data, user, None, name)

    async def send_message_command(self, name: str, target_message: Json, user: Json,
                                   channel: Json | None = None, guild: Json | None = None) -> InteractionRecord:
        """Dispatch a message context-menu command on ``target_message`` (see ``add_message``)."""
        data = {"name": name, "type": 3, "target_id": target_message["id"],
                "resolved": {"messages": {target_message["id"]: target_message}}}
        channel = channel or self.channels.get(target_message["channel_id"])
        return await self._interact(data, user, channel, guild)

    @staticmethod
    def _option(option: Json) -> Json:
        """An option as Discord sends it: a user, role or channel dict becomes its id; ``type`` inferred."""
        value = option.get("value")
        if isinstance(value, dict):
            kind = 6 if "username" in value else 7 if "permission_overwrites" in value else 8
            return {"type": kind, **option, "value": value["id"]}
        return {"type": {bool: 5, int: 4, float: 10}.get(type(value), 3), **option}

    def _find_command(self, name: str, kind: int) -> Json:
        for scope in (self.guild_id, None):
            for command in self.commands.get(scope, []):
                if command["name"] == name and command.get("type", 1) == kind:
                    return command
        synced = sorted(c["name"] for scoped in self.commands.values() for c in scoped)
        raise LookupError(f"the bot has not synced a type-{kind} command {name!r}; synced: {synced}")

    async def _interact(self, data: Json, user: Json, channel: Json | None, guild: Json | None,
                        timeout: float = 10.0) -> InteractionRecord:
        if guild is not None and _id(guild) != self.guild_id:
            raise LookupError(f"the stand-in plays one guild, {self.guild_id}, not {_id(guild)}")
        command = self._find_command(data["name"], data["type"])
        data = {**data, "id": command["id"], **({"guild_id": command["guild_id"]} if "guild_id" in command else {})}
        return await self._dispatch(2, data, user, channel, data["name"], timeout=timeout)

    async def _dispatch(self, kind: int, data: Json, user: Json, channel: Json | None, name: str,
                        timeout: float = 10.0, **extra: Any) -> InteractionRecord:
        """Send one INTERACTION_CREATE of ``kind`` (2 command, 3 component, 5 modal submit)."""
        channel = channel or self.channel
        token = f"interaction-{uuid.uuid4().hex}"
        payload = {"id": self.snowflake(), "application_id": self.application_id, "type": kind, "token": token,
                   "version": 1, "data": data, "guild_id": self.guild_id,
                   "guild": {"id": self.guild_id, "locale": "en-US", "features": []},
                   "channel_id": channel["id"], "channel": {**channel, "permissions": str(self.permissions(user))},
                   "member": self.member(user, with_permissions=True),
                   "app_permissions": str(self.permissions(self.bot_user)), "locale": "en-US",
                   "guild_locale": "en-US", "entitlements": [], "entitlement_sku_ids": [],
                   "authorizing_integration_owners": {"0": self.guild_id}, "context": 0,
                   "attachment_size_limit": self.attachment_size_limit, **extra}
        record = InteractionRecord(id=payload["id"], token=token, name=name, payload=payload)
        await self.gateway.wait_online(timeout)
        self.interactions[record.id] = record
        record.sent_at = time.monotonic()
        await self.gateway.dispatch("INTERACTION_CREATE", payload)
        return record

    # ---- records ----------------------------------------------------------------------------

    def responses_for(self, interaction: InteractionRecord) -> list[Json]:
        """The callback, follow-ups, edits and deletes the bot sent for an interaction, in order."""
        return [e for e in self.events if e["interaction_id"] == interaction.id and e["method"] != "GET"]

    def files_for(self, interaction: InteractionRecord) -> list[Json]:
        """Every file uploaded for an interaction: ``{"field", "filename", "content_type", "data"}``."""
        return [f for e in self.responses_for(interaction) for f in e["files"]]

    def messages_for(self, interaction: InteractionRecord) -> list[Json]:
        """The messages an interaction left, as a user now sees them (deleted ones left out)."""
        return [self.messages[m] for m in dict.fromkeys(interaction.message_ids) if m in self.messages]

    async def wait_for(self, predicate: Callable[[Json], bool] | None = None, *, timeout: float = 10.0,
                       interaction: InteractionRecord | None = None, count: int = 1, **match: Any) -> Json:
        """Wait for the ``count``-th recorded request matching ``predicate`` and ``match`` (event keys).

        Example: ``await standin.wait_for(interaction=rec, kind="followup")``.

        Raises:
            TimeoutError: none arrived in ``timeout`` seconds; the message lists what did.
        """
        if interaction is not None:
            match["interaction_id"] = interaction.id

        def found() -> list[Json]:
            return [e for e in self.events if all(e.get(k) == v for k, v in match.items())
                    and (predicate is None or predicate(e))]

        try:
            async with self._changed, asyncio.timeout(timeout):
                await self._changed.wait_for(lambda: len(found()) >= count)
        except TimeoutError:
            seen = [f"{e['method']} {e['path']} -> {e['status']}" for e in self.events[-20:]]
            raise TimeoutError(f"no request matched {match} within {timeout} s; last seen: {seen}") from None
        return found()[count - 1]
