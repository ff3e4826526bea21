"""The gateway half of the Discord stand-in: the websocket the unmodified discord.py client joins.

Frames go out as plain JSON text. discord.py asks for ``compress=zlib-stream`` in the query string
but only decompresses *binary* frames, so text frames need no compression on either side.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

log = logging.getLogger(__name__)

# Opcodes, from Discord's gateway documentation.
DISPATCH, HEARTBEAT, IDENTIFY, RESUME, REQUEST_MEMBERS = 0, 1, 2, 6, 8
INVALID_SESSION, HELLO, HEARTBEAT_ACK = 9, 10, 11
HEARTBEAT_INTERVAL_MS = 10_000  # each ACK also feeds discord.py's 60 s read timeout
AUTHENTICATION_FAILED = 4004  # close code discord.py does not retry

Event = tuple[str, dict[str, Any]]


@dataclass
class GatewaySession:
    """One IDENTIFY'd session. It outlives its socket so that a RESUME can take it up again."""

    session_id: str
    intents: int
    seq: int = 0  # last sequence number sent
    ws: web.WebSocketResponse | None = None


class Gateway:
    """Accepts discord.py connections, answers heartbeats, and sends dispatches to the live session.

    Args:
        token: the bot token an IDENTIFY must carry.
        on_identify: builds the events sent after IDENTIFY (READY, then GUILD_CREATE).
        on_request_members: builds the GUILD_MEMBERS_CHUNK answer to an op 8 request.
    """

    def __init__(
        self,
        token: str,
        on_identify: Callable[[GatewaySession], list[Event]],
        on_request_members: Callable[[dict[str, Any]], list[Event]],
    ) -> None:
        self.token = token
        self.sessions: dict[str, GatewaySession] = {}
        self.received: list[dict[str, Any]] = []  # {time, op, d} for every frame a client sent
        self._on_identify = on_identify
        self._on_request_members = on_request_members
        self._sockets: set[web.WebSocketResponse] = set()
        self._live: GatewaySession | None = None  # the most recently identified or resumed session
        self._online = asyncio.Event()

    @property
    def live(self) -> GatewaySession | None:
        """The session dispatches go to, if its socket is still open."""
        live = self._live
        return live if live is not None and live.ws is not None and not live.ws.closed else None

    def count(self, op: int) -> int:
        """How many frames with opcode ``op`` the clients have sent (``IDENTIFY`` = 2, ``RESUME`` = 6)."""
        return sum(1 for frame in self.received if frame["op"] == op)

    async def wait_online(self, timeout: float = 10.0, identifies: int = 1) -> GatewaySession:
        """Wait until ``identifies`` IDENTIFYs have come (a restarted bot makes one more) and a
        session's socket is open.

        Raises:
            TimeoutError: no such client came online within ``timeout`` seconds.
        """
        async with asyncio.timeout(timeout):
            while (live := self.live) is None or self.count(IDENTIFY) < identifies:
                self._online.clear()
                await self._online.wait()
        return live

    async def dispatch(self, event: str, data: dict[str, Any]) -> None:
        """Send a DISPATCH to the live session.

        Raises:
            RuntimeError: no client is connected.
        """
        live = self.live
        if live is None:
            raise RuntimeError(f"no discord.py client is connected to receive {event}")
        await self._dispatch_to(live, event, data)

    async def disconnect_all(self, code: int = 4000) -> None:
        """Close every socket; with 4000 (or any code discord.py treats as resumable) it reconnects."""
        sockets = list(self._sockets)
        await asyncio.gather(*(ws.close(code=code) for ws in sockets), return_exceptions=True)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """The aiohttp handler for ``GET /gateway``."""
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        self._sockets.add(ws)
        try:
            await ws.send_str(json.dumps({"op": HELLO, "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS}}))
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    await self._received(ws, json.loads(msg.data))
                elif msg.type is WSMsgType.ERROR:
                    log.debug("gateway socket error: %s", ws.exception())
        finally:
            self._sockets.discard(ws)
        return ws

    async def _received(self, ws: web.WebSocketResponse, frame: dict[str, Any]) -> None:
        op, d = frame.get("op"), frame.get("d")
        logged = {k: v for k, v in d.items() if k != "token"} if isinstance(d, dict) else d
        self.received.append({"time": time.monotonic(), "op": op, "d": logged})
        if op == HEARTBEAT:
            await ws.send_str(json.dumps({"op": HEARTBEAT_ACK}))
        elif op == IDENTIFY:
            if d.get("token") != self.token:
                await ws.close(code=AUTHENTICATION_FAILED, message=b"Authentication failed.")
                return
            session = GatewaySession(session_id=uuid.uuid4().hex, intents=int(d.get("intents", 0)))
            self.sessions[session.session_id] = session
            self._attach(session, ws)
            for event, data in self._on_identify(session):
                await self._dispatch_to(session, event, data)
        elif op == RESUME:
            session = self.sessions.get(d.get("session_id", ""))
            if session is None or d.get("token") != self.token:
                await ws.send_str(json.dumps({"op": INVALID_SESSION, "d": False}))
                return
            self._attach(session, ws)
            await self._dispatch_to(session, "RESUMED", {})
        elif op == REQUEST_MEMBERS and self.live is not None:
            for event, data in self._on_request_members(d):
                await self._dispatch_to(self.live, event, data)

    def _attach(self, session: GatewaySession, ws: web.WebSocketResponse) -> None:
        session.ws = ws
        self._live = session
        self._online.set()

    async def _dispatch_to(self, session: GatewaySession, event: str, data: dict[str, Any]) -> None:
        assert session.ws is not None  # internal invariant: only attached sessions get dispatches
        session.seq += 1
        await session.ws.send_str(json.dumps({"op": DISPATCH, "t": event, "s": session.seq, "d": data}))
