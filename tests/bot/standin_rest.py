"""The REST half of the Discord stand-in: the routes discord.py calls, and the request record.

Each request becomes one event in ``DiscordStandIn.events``::

    {"time": monotonic s at arrival, "method", "path" (without "/api/v10"), "query": {...},
     "json": body or payload_json, "files": [{"field", "filename", "content_type", "data"}],
     "kind": "login" | "commands" | "callback" | "followup" | "edit" | "delete" | "get"
             | "channel_message" | "download" | "unknown" | ...,
     "interaction_id", "token" (None unless about an interaction), "status": the HTTP status sent}
"""
from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.bot.standin_limits import error_body, form_errors

if TYPE_CHECKING:
    from tests.bot.standin import DiscordStandIn, InteractionRecord

log = logging.getLogger(__name__)

Json = dict[str, Any]
API = r"/api/v{version:\d+}"
API_PREFIX = re.compile(r"^/api/v\d+")
EPHEMERAL, LOADING = 1 << 6, 1 << 7  # message flags
KEPT_FLAGS = EPHEMERAL | (1 << 2) | (1 << 12) | (1 << 15)  # ephemeral, no embeds, silent, components v2
TRUE = ("1", "true", "True")
NONCE_WINDOW_S = 300  # how long Discord remembers an enforced nonce (documented as "a few minutes")


def json_response(data: Any, status: int = 200) -> web.Response:
    """A JSON reply. discord.py parses JSON only under exactly ``Content-Type: application/json``."""
    return web.Response(status=status, body=json.dumps(data).encode(), headers={"Content-Type": "application/json"})


def error(status: int, code: int, message: str) -> web.Response:
    """A Discord-shaped error reply (discord.py raises NotFound, Forbidden or HTTPException)."""
    return json_response({"message": message, "code": code}, status)


NO_CONTENT = 204


class Rest:
    """The route handlers, reading and changing the state of one ``DiscordStandIn``."""

    def __init__(self, standin: DiscordStandIn) -> None:
        self.s = standin
        self._in_flight: dict[int, Json] = {}  # id(request) -> its event, while it is handled

    def app(self, client_max_size: int) -> web.Application:
        """The aiohttp application: every route plus a recorded 404 for anything else."""
        app = web.Application(middlewares=[self.record], client_max_size=client_max_size)
        r = app.router
        r.add_get("/gateway", self.s.gateway.handle)
        r.add_get("/attachments/{attachment_id}/{filename}", self.download)
        r.add_get(API + "/users/@me", self.login)
        r.add_get(API + "/users/{user_id}", self.user)
        r.add_get(API + "/gateway", self.gateway_url)
        r.add_get(API + "/gateway/bot", self.gateway_url)
        r.add_get(API + "/oauth2/applications/@me", self.application)
        r.add_get(API + "/applications/@me", self.application)
        for scope in ("/applications/{app_id}/commands", "/applications/{app_id}/guilds/{guild_id}/commands"):
            r.add_put(API + scope, self.put_commands)
            r.add_get(API + scope, self.get_commands)
        r.add_post(API + "/interactions/{interaction_id}/{token}/callback", self.callback)
        r.add_post(API + "/webhooks/{app_id}/{token}", self.followup)
        r.add_route("*", API + "/webhooks/{app_id}/{token}/messages/{message_id}", self.webhook_message)
        r.add_get(API + "/channels/{channel_id}", self.channel)
        r.add_post(API + "/channels/{channel_id}/messages", self.channel_post)
        r.add_get(API + "/channels/{channel_id}/messages", self.channel_history)
        r.add_route("*", API + "/channels/{channel_id}/messages/{message_id}", self.channel_message)
        r.add_post(API + "/channels/{channel_id}/typing", self.typing)
        r.add_get(API + "/guilds/{guild_id}/members/{user_id}", self.guild_member)
        r.add_route("*", "/{tail:.*}", self.unknown)
        return app

    # ---- recording --------------------------------------------------------------------------

    @web.middleware
    async def record(self, request: web.Request,
                     handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        """Record each request (body parsed) once answered, and wake ``DiscordStandIn.wait_for``."""
        if request.path == "/gateway":
            return await handler(request)
        event = {"time": time.monotonic(), "method": request.method, "path": API_PREFIX.sub("", request.path),
                 "query": dict(request.query), "json": None, "files": [], "kind": None,
                 "interaction_id": None, "token": None, "status": None}
        self._in_flight[id(request)] = event
        try:
            await self._read_body(request, event)
            response = await handler(request)
            if self.s.hold is not None and self.s.hold(event):
                await self.s._hold_request(event)  # Discord acted on it; the answer is late (a crash test)
        except Exception as exc:  # a stand-in bug: a 400 makes discord.py fail fast, where a 500 retries
            log.exception("stand-in failed on %s %s", request.method, request.path)
            response = error(400, 0, f"stand-in error: {exc!r}")
        finally:
            del self._in_flight[id(request)]
        event["status"] = response.status
        self.s.events.append(event)
        async with self.s._changed:
            self.s._changed.notify_all()
        return response

    @staticmethod
    async def _read_body(request: web.Request, event: Json) -> None:
        if request.content_type == "application/json":
            event["json"] = await request.json()
        elif request.content_type.startswith("multipart/"):
            async for part in await request.multipart():
                if part.name == "payload_json":
                    event["json"] = json.loads(await part.text())
                elif part.filename is not None:
                    event["files"].append({
                        "field": part.name, "filename": part.filename, "data": bytes(await part.read()),
                        "content_type": part.headers.get("Content-Type", "application/octet-stream")})

    def _event(self, request: web.Request, kind: str, record: InteractionRecord | None = None) -> Json:
        event = self._in_flight[id(request)]
        event["kind"] = kind
        if record is not None:
            event["interaction_id"], event["token"] = record.id, record.token
        return event

    def _invalid(self, body: Json, files: list[Json]) -> web.Response | None:
        """Discord's checks on a message body (`standin_limits`), or None if it passes."""
        if errors := form_errors(body, files):
            log.warning("stand-in refused a message body: %s", errors)
            return json_response(error_body(errors), 400)
        if sum(len(f["data"]) for f in files) > self.s.attachment_size_limit:
            return error(413, 40005, "Request entity too large")
        return None

    # ---- login, gateway, application, commands ----------------------------------------------

    async def login(self, request: web.Request) -> web.Response:
        self._event(request, "login")
        if request.headers.get("Authorization") != f"Bot {self.s.token}":
            return error(401, 0, "401: Unauthorized")
        return json_response({**self.s.bot_user, "verified": True, "mfa_enabled": False, "flags": 0})

    async def user(self, request: web.Request) -> web.Response:
        self._event(request, "get")
        user = self.s.users.get(request.match_info["user_id"])
        return json_response(user) if user else error(404, 10013, "Unknown User")

    async def gateway_url(self, request: web.Request) -> web.Response:
        self._event(request, "gateway")
        limit = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
        return json_response({"url": self.s.gateway_url, "shards": 1, "session_start_limit": limit})

    async def application(self, request: web.Request) -> web.Response:
        self._event(request, "application")
        s = self.s
        return json_response({"id": s.application_id, "name": s.bot_user["username"], "description": "",
                              "icon": None, "bot_public": False, "bot_require_code_grant": False,
                              "owner": s.owner, "team": None, "verify_key": "0" * 64, "flags": s.application_flags,
                              "bot": s.bot_user, "summary": "", "interactions_endpoint_url": None})

    def _stored(self, command: Json, guild_id: str | None, known: list[Json]) -> Json:
        same = [c for c in known if c["name"] == command["name"] and c["type"] == command.get("type", 1)]
        stored = {**command, "id": same[0]["id"] if same else self.s.snowflake(), "type": command.get("type", 1),
                  "application_id": self.s.application_id, "version": self.s.snowflake(),
                  "description": command.get("description", ""),
                  "default_member_permissions": command.get("default_member_permissions")}
        return {**stored, "guild_id": guild_id} if guild_id else stored

    async def put_commands(self, request: web.Request) -> web.Response:
        event = self._event(request, "commands")
        guild_id = request.match_info.get("guild_id")
        known = self.s.commands.get(guild_id, [])
        self.s.commands[guild_id] = [self._stored(c, guild_id, known) for c in event["json"]]
        return json_response(self.s.commands[guild_id])

    async def get_commands(self, request: web.Request) -> web.Response:
        self._event(request, "get")
        return json_response(self.s.commands.get(request.match_info.get("guild_id"), []))

    # ---- interactions -----------------------------------------------------------------------

    async def callback(self, request: web.Request) -> web.Response:
        record = self.s.interactions.get(request.match_info["interaction_id"])
        if record is None or record.token != request.match_info["token"]:
            self._event(request, "callback")
            return error(404, 10062, "Unknown interaction")
        event = self._event(request, "callback", record)
        body, deadline = event["json"] or {}, self.s.ack_deadline_s
        if record.acked_at is not None:
            return error(400, 40060, "Interaction has already been acknowledged.")
        if deadline is not None and event["time"] - record.sent_at > deadline:
            return error(404, 10062, "Unknown interaction")
        data = body.get("data") or {}
        if (invalid := self._invalid(data, event["files"])) is not None:
            return invalid
        record.acked_at, record.callback_type = event["time"], body.get("type")
        message = None
        if record.callback_type in (4, 5):
            loading = LOADING if record.callback_type == 5 else 0
            flags = (int(data.get("flags") or 0) & KEPT_FLAGS) | loading
            message = self.s._message(record.payload["channel_id"], self.s.bot_user, data, event["files"],
                                      record, flags)
            record.original_id = message["id"]
        elif record.callback_type in (6, 7) and record.payload["type"] == 3:  # update the pressed message
            message = self.s.messages.get(record.payload["message"]["id"])
            if message is None:
                return error(404, 10008, "Unknown Message")
            if record.callback_type == 7:
                self.s._edit(message, data, event["files"])
            record.original_id = message["id"]
            record.message_ids.append(message["id"])
        elif record.callback_type == 9 and record.payload["type"] == 5:
            return error(400, 40060, "A modal cannot answer a modal submit")
        if request.query.get("with_response") not in TRUE:
            return web.Response(status=NO_CONTENT)
        answer: Json = {"interaction": {"id": record.id, "type": record.payload["type"]}}
        if message is not None:
            answer["interaction"].update(response_message_id=message["id"],
                                         response_message_loading=record.callback_type == 5,
                                         response_message_ephemeral=bool(message["flags"] & EPHEMERAL))
            answer["resource"] = {"type": record.callback_type, "message": message}
        return json_response(answer)

    def _webhook_record(self, request: web.Request) -> InteractionRecord | None:
        """The acknowledged interaction whose token the webhook path carries."""
        token = request.match_info["token"]
        found = [r for r in self.s.interactions.values() if r.token == token and r.acked_at is not None]
        return found[0] if found and request.match_info["app_id"] == self.s.application_id else None

    async def followup(self, request: web.Request) -> web.Response:
        record = self._webhook_record(request)
        event = self._event(request, "followup", record)
        if record is None:
            return error(404, 10015, "Unknown Webhook")
        body = event["json"] or {}
        if (invalid := self._invalid(body, event["files"])) is not None:
            return invalid
        original = self.s.messages.get(record.original_id or "")
        if original is not None and original["flags"] & LOADING:
            # Discord: the first follow-up after a "thinking" defer replaces it, keeping its ephemerality.
            message = self.s._edit(original, body, event["files"])
            record.message_ids.append(message["id"])
        else:
            flags = int(body.get("flags") or 0) & KEPT_FLAGS
            message = self.s._message(record.payload["channel_id"], self.s.bot_user, body, event["files"],
                                      record, flags)
        return json_response(message) if request.query.get("wait") in TRUE else web.Response(status=NO_CONTENT)

    async def webhook_message(self, request: web.Request) -> web.StreamResponse:
        record = self._webhook_record(request)
        kind = {"GET": "get", "PATCH": "edit", "DELETE": "delete"}.get(request.method, "unknown")
        self._event(request, kind, record)
        if record is None:
            return error(404, 10015, "Unknown Webhook")
        message_id = request.match_info["message_id"]
        if message_id == "@original":
            message_id = record.original_id or ""
        if message_id not in record.message_ids or message_id not in self.s.messages:
            return error(404, 10008, "Unknown Message")
        return self._message_op(request, message_id)

    def _message_op(self, request: web.Request, message_id: str) -> web.StreamResponse:
        """GET, PATCH or DELETE one stored message."""
        event, message = self._in_flight[id(request)], self.s.messages[message_id]
        if request.method == "GET":
            return json_response(message)
        if request.method == "DELETE":
            del self.s.messages[message_id]
            return web.Response(status=NO_CONTENT)
        if request.method != "PATCH":
            return error(405, 0, "405: Method Not Allowed")
        body = event["json"] or {}
        if (invalid := self._invalid(body, event["files"])) is not None:
            return invalid
        return json_response(self.s._edit(message, body, event["files"]))

    # ---- channels, members, files ----------------------------------------------------------

    async def channel(self, request: web.Request) -> web.Response:
        self._event(request, "get")
        channel = self.s.channels.get(request.match_info["channel_id"])
        return json_response(channel) if channel else error(404, 10003, "Unknown Channel")

    async def channel_post(self, request: web.Request) -> web.Response:
        event = self._event(request, "channel_message")
        channel_id = request.match_info["channel_id"]
        if channel_id not in self.s.channels:
            return error(404, 10003, "Unknown Channel")
        body = event["json"] or {}
        if (invalid := self._invalid(body, event["files"])) is not None:
            return invalid
        flags = int(body.get("flags") or 0) & KEPT_FLAGS & ~EPHEMERAL
        nonce = body.get("nonce")
        key = (channel_id, str(nonce))
        if nonce is not None and body.get("enforce_nonce") and key in self.s.nonces:
            # Discord: the same nonce from the same author within a few minutes returns the first message.
            at, message_id = self.s.nonces[key]
            if time.monotonic() - at < NONCE_WINDOW_S and message_id in self.s.messages:
                return json_response(self.s.messages[message_id])
        message = self.s._message(channel_id, self.s.bot_user, body, event["files"], None, flags)
        if nonce is not None:
            message["nonce"] = nonce
            self.s.nonces[key] = (time.monotonic(), message["id"])
        return json_response(message)

    async def channel_history(self, request: web.Request) -> web.Response:
        """GET a channel's messages, newest first (``limit``, ``before``, ``after``)."""
        self._event(request, "history")
        channel_id = request.match_info["channel_id"]
        if channel_id not in self.s.channels:
            return error(404, 10003, "Unknown Channel")
        limit = max(1, min(100, int(request.query.get("limit", 50))))
        before, after = request.query.get("before"), request.query.get("after")
        found = [{k: v for k, v in m.items() if k != "nonce"} for m in self.s.messages.values()
                 if m["channel_id"] == channel_id and not m["flags"] & EPHEMERAL
                 and (before is None or int(m["id"]) < int(before)) and (after is None or int(m["id"]) > int(after))]
        found.sort(key=lambda m: int(m["id"]), reverse=after is None)
        return json_response(found[:limit])

    async def channel_message(self, request: web.Request) -> web.StreamResponse:
        self._event(request, {"GET": "get", "PATCH": "edit", "DELETE": "delete"}.get(request.method, "unknown"))
        message = self.s.messages.get(request.match_info["message_id"])
        if message is None or message["channel_id"] != request.match_info["channel_id"]:
            return error(404, 10008, "Unknown Message")
        return self._message_op(request, message["id"])

    async def typing(self, request: web.Request) -> web.Response:
        self._event(request, "typing")
        return web.Response(status=NO_CONTENT)

    async def guild_member(self, request: web.Request) -> web.Response:
        self._event(request, "get")
        user_id = request.match_info["user_id"]
        if request.match_info["guild_id"] != self.s.guild_id or user_id not in self.s.member_roles:
            return error(404, 10007, "Unknown Member")
        return json_response(self.s.member(user_id))

    async def download(self, request: web.Request) -> web.StreamResponse:
        """The file, with its real Content-Length, in 64 KiB writes; ``served`` counts the bytes
        written before the end or the client's hang-up (the kernel may buffer some unread)."""
        event = self._event(request, "download")
        stored = self.s._files.get(request.match_info["attachment_id"])
        if stored is None:
            return web.Response(status=404, text="Not Found")
        data, content_type = stored
        response = web.StreamResponse(headers={"Content-Type": content_type})
        response.content_length = len(data)
        event["served"] = 0
        try:
            await response.prepare(request)
            for start in range(0, len(data), 64 * 1024):
                await response.write(data[start:start + 64 * 1024])
                event["served"] = min(len(data), start + 64 * 1024)
            await response.write_eof()
        except ConnectionError:  # the client hung up: what a capped download does
            log.debug("download of %s cut off after %d bytes", request.path, event["served"])
        return response

    async def unknown(self, request: web.Request) -> web.Response:
        self._event(request, "unknown")
        log.warning("stand-in has no route for %s %s", request.method, request.path)
        return error(404, 0, "404: Not Found")
