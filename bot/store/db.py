"""Persistence in SQLite (aiosqlite): jobs, the active checkpoint per style, the admin audit log.

Schema changes are numbered migrations applied in order; ``schema_version`` records the last one.
Every accepted job is written before the user is told it is queued, so nothing accepted is lost
across a restart.
"""
from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosqlite

from engine.band.arrange import PARTS
from engine.compose.request import PAYLOAD_VERSION, ComposeRequest

log = logging.getLogger(__name__)

MIGRATIONS: list[str] = [
    # 1: the first schema
    """
    CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        user_id INTEGER NOT NULL,
        guild_id INTEGER,
        channel_id INTEGER,
        request TEXT NOT NULL,
        seed_midi BLOB,
        style TEXT NOT NULL,
        checkpoint TEXT NOT NULL,
        checkpoint_hash TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        error TEXT,
        result TEXT,
        application_id INTEGER,
        interaction_token TEXT,
        status_message_id INTEGER,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        delivered_at REAL
    );
    CREATE INDEX jobs_status ON jobs(status);
    CREATE INDEX jobs_user ON jobs(user_id, status);
    CREATE TABLE active_checkpoints (
        style TEXT PRIMARY KEY,
        checkpoint TEXT NOT NULL,
        changed_by INTEGER,
        changed_at REAL NOT NULL
    );
    CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at REAL NOT NULL,
        user_id INTEGER NOT NULL,
        guild_id INTEGER,
        action TEXT NOT NULL,
        detail TEXT NOT NULL,
        allowed INTEGER NOT NULL
    );
    CREATE TABLE flags (name TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    # 2: delivery retried while the bot runs, exactly once on every path, and retention
    """
    ALTER TABLE jobs ADD COLUMN delivery_attempts INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN next_try_at REAL;
    ALTER TABLE jobs ADD COLUMN posted_at REAL;
    ALTER TABLE jobs ADD COLUMN message_id INTEGER;
    ALTER TABLE jobs ADD COLUMN notice_sent INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN pruned_at REAL;
    UPDATE jobs SET notice_sent = 1 WHERE status IN ('failed', 'delivered');
    CREATE INDEX jobs_finished ON jobs(status, updated_at);
    """,
]

# queued -> running -> done -> delivered; or failed (then one notice); a crash re-queues running jobs
OPEN_STATUSES = ("queued", "running", "done")
FINISHED_STATUSES = ("delivered", "failed")


@dataclass
class Job:
    id: str
    user_id: int
    guild_id: int | None
    channel_id: int | None
    request: dict[str, Any]  # `ComposeRequest.to_payload` (older rows: the unversioned dict, seed beside it)
    style: str
    checkpoint: str
    checkpoint_hash: str
    status: str = "queued"
    attempts: int = 0
    error: str | None = None
    result: dict[str, Any] | None = None
    application_id: int | None = None
    interaction_token: str | None = None
    status_message_id: int | None = None
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    delivered_at: float | None = None
    delivery_attempts: int = 0  # deliveries (or failure notices) that did not get through
    next_try_at: float | None = None  # when to try delivering (or telling) again
    posted_at: float | None = None  # a new message was being posted (not an edit): look before posting again
    message_id: int | None = None  # the message that carries the clip or the notice
    notice_sent: int = 0  # a failed job's user has been told (or given up on)
    pruned_at: float | None = None  # its clip files, seed and token were removed (retention)
    seed_midi: bytes | None = field(default=None, repr=False)  # only rows from before payloads had a version

    @staticmethod
    def new_id() -> str:
        return uuid.uuid4().hex[:16]

    def compose_request(self) -> ComposeRequest:
        """The job's request, as accepted.

        Raises:
            RequestError: the stored request is malformed.
        """
        payload = self.request
        if "v" not in payload:  # accepted before requests were versioned payloads
            seed = base64.b64encode(self.seed_midi).decode("ascii") if self.seed_midi is not None else None
            payload = {"v": PAYLOAD_VERSION, "style": payload.get("style", self.style), "seconds": payload.get("seconds"),
                       "tempo": payload.get("tempo"), "seed": payload.get("seed"),
                       "temperature": payload.get("temperature"), "changes": payload.get("changes"),
                       "seed_midi": seed, "format": payload.get("format", "ogg"), "parts": sorted(PARTS),
                       "form": None, "key": None, "swing": None}
        return ComposeRequest.from_payload(payload)


def _row_to_job(row: aiosqlite.Row) -> Job:
    d = dict(row)
    d["request"] = json.loads(d["request"])
    d["result"] = json.loads(d["result"]) if d["result"] else None
    return Job(**d)


def _where(statuses: tuple[str, ...], user_id: int | None) -> tuple[str, list[Any]]:
    """The WHERE clause (placeholders only) and its arguments for jobs in ``statuses``, of one user or all."""
    sql = f"status IN ({','.join('?' * len(statuses))})"
    args: list[Any] = list(statuses)
    if user_id is not None:
        sql += " AND user_id = ?"
        args.append(user_id)
    return sql, args


class Store:
    """The bot's database. Open with `Store.open`; all methods are coroutines."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn

    @classmethod
    async def open(cls, path: Path | str) -> Store:
        conn = await aiosqlite.connect(str(path))
        conn.row_factory = aiosqlite.Row
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=NORMAL")
        store = cls(conn)
        await store.migrate()
        return store

    async def close(self) -> None:
        await self.conn.close()

    async def migrate(self) -> int:
        await self.conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        async with self.conn.execute("SELECT MAX(version) FROM schema_version") as cur:
            row = await cur.fetchone()
        current = row[0] or 0
        for number, sql in enumerate(MIGRATIONS, start=1):
            if number > current:
                await self.conn.executescript(sql)
                await self.conn.execute("INSERT INTO schema_version (version) VALUES (?)", (number,))
                log.info("database migrated to version %d", number)
        await self.conn.commit()
        return len(MIGRATIONS)

    # -- jobs ----------------------------------------------------------------------------------

    async def add_job(self, job: Job) -> None:
        await self.conn.execute(
            "INSERT INTO jobs (id, user_id, guild_id, channel_id, request, seed_midi, style, checkpoint, checkpoint_hash,"
            " status, attempts, application_id, interaction_token, status_message_id, created_at, updated_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (job.id, job.user_id, job.guild_id, job.channel_id, json.dumps(job.request), job.seed_midi, job.style,
             job.checkpoint, job.checkpoint_hash, job.status, job.attempts, job.application_id,
             job.interaction_token, job.status_message_id, job.created_at, job.updated_at))
        await self.conn.commit()

    async def update_job(self, job_id: str, **values: Any) -> None:
        if "result" in values and values["result"] is not None:
            values["result"] = json.dumps(values["result"])
        values["updated_at"] = time.time()
        cols = ", ".join(f"{k} = ?" for k in values)
        await self.conn.execute(f"UPDATE jobs SET {cols} WHERE id = ?", (*values.values(), job_id))  # noqa: S608
        await self.conn.commit()

    async def get_job(self, job_id: str) -> Job | None:
        async with self.conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)) as cur:
            row = await cur.fetchone()
        return _row_to_job(row) if row else None

    async def jobs(self, statuses: tuple[str, ...] = OPEN_STATUSES, user_id: int | None = None) -> list[Job]:
        where, args = _where(statuses, user_id)
        async with self.conn.execute(f"SELECT * FROM jobs WHERE {where} ORDER BY created_at", args) as cur:  # noqa: S608
            return [_row_to_job(r) for r in await cur.fetchall()]

    async def count(self, statuses: tuple[str, ...], user_id: int | None = None) -> int:
        where, args = _where(statuses, user_id)
        async with self.conn.execute(f"SELECT COUNT(*) FROM jobs WHERE {where}", args) as cur:  # noqa: S608
            row = await cur.fetchone()
        return int(row[0])

    async def due(self, now: float) -> list[Job]:
        """Finished jobs whose clip is undelivered, or whose failure notice is unsent, and due a try."""
        async with self.conn.execute(
                "SELECT * FROM jobs WHERE (status = 'done' OR (status = 'failed' AND notice_sent = 0))"
                " AND COALESCE(next_try_at, 0) <= ? ORDER BY created_at", (now,)) as cur:
            return [_row_to_job(r) for r in await cur.fetchall()]

    async def bump_attempts(self, job_id: str) -> int:
        """Count one more start of a job (persisted, so the crash-retry limit survives restarts)."""
        await self.conn.execute("UPDATE jobs SET attempts = attempts + 1, status = 'running', updated_at = ?"
                                " WHERE id = ?", (time.time(), job_id))
        await self.conn.commit()
        async with self.conn.execute("SELECT attempts FROM jobs WHERE id = ?", (job_id,)) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    # -- retention -------------------------------------------------------------------------------

    async def prunable(self, before: float, limit: int = 200) -> list[Job]:
        """Finished jobs last changed before ``before`` whose files, seed or token are still kept."""
        async with self.conn.execute(
                "SELECT * FROM jobs WHERE status IN ('delivered', 'failed') AND pruned_at IS NULL"
                " AND COALESCE(delivered_at, updated_at) < ? ORDER BY updated_at LIMIT ?", (before, limit)) as cur:
            return [_row_to_job(r) for r in await cur.fetchall()]

    async def forget_seeds(self, before: float) -> int:
        """Drop the uploaded seed MIDI of finished jobs last changed before ``before``; returns rows changed."""
        cur = await self.conn.execute(
            "UPDATE jobs SET seed_midi = NULL, request = json_set(request, '$.seed_midi', json('null'))"
            " WHERE status IN ('delivered', 'failed') AND COALESCE(delivered_at, updated_at) < ?"
            " AND (seed_midi IS NOT NULL OR json_extract(request, '$.seed_midi') IS NOT NULL)", (before,))
        await self.conn.commit()
        return cur.rowcount

    async def forget_tokens(self, before: float) -> int:
        """Drop the interaction tokens of finished jobs last changed before ``before``."""
        cur = await self.conn.execute(
            "UPDATE jobs SET interaction_token = NULL WHERE status IN ('delivered', 'failed')"
            " AND COALESCE(delivered_at, updated_at) < ? AND interaction_token IS NOT NULL", (before,))
        await self.conn.commit()
        return cur.rowcount

    async def last_job_time(self, user_id: int) -> float | None:
        async with self.conn.execute("SELECT MAX(created_at) FROM jobs WHERE user_id = ?", (user_id,)) as cur:
            row = await cur.fetchone()
        return row[0]

    # -- active checkpoints ----------------------------------------------------------------------

    async def active_checkpoints(self) -> dict[str, str]:
        async with self.conn.execute("SELECT style, checkpoint FROM active_checkpoints") as cur:
            return {r[0]: r[1] for r in await cur.fetchall()}

    async def set_active(self, style: str, checkpoint: str, user_id: int) -> None:
        await self.conn.execute(
            "INSERT INTO active_checkpoints (style, checkpoint, changed_by, changed_at) VALUES (?,?,?,?)"
            " ON CONFLICT(style) DO UPDATE SET checkpoint = excluded.checkpoint, changed_by = excluded.changed_by,"
            " changed_at = excluded.changed_at", (style, checkpoint, user_id, time.time()))
        await self.conn.commit()

    # -- audit log and flags ---------------------------------------------------------------------

    async def audit(self, user_id: int, guild_id: int | None, action: str, detail: str, allowed: bool) -> None:
        await self.conn.execute("INSERT INTO audit_log (at, user_id, guild_id, action, detail, allowed) VALUES (?,?,?,?,?,?)",
                                (time.time(), user_id, guild_id, action, detail, int(allowed)))
        await self.conn.commit()

    async def audit_entries(self, limit: int = 50) -> list[dict[str, Any]]:
        async with self.conn.execute("SELECT * FROM audit_log ORDER BY id DESC LIMIT ?", (limit,)) as cur:
            return [dict(r) for r in await cur.fetchall()]

    async def flag(self, name: str, default: str = "") -> str:
        async with self.conn.execute("SELECT value FROM flags WHERE name = ?", (name,)) as cur:
            row = await cur.fetchone()
        return row[0] if row else default

    async def set_flag(self, name: str, value: str) -> None:
        await self.conn.execute("INSERT INTO flags (name, value) VALUES (?,?) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                                (name, value))
        await self.conn.commit()


def backup(db_path: Path, dest: Path) -> int:
    """Copy the database to ``dest`` with SQLite's online backup API: a consistent copy, even while
    the bot writes to it (``chorus backup``). Blocking: not for the event loop. Returns ``dest``'s size.

    Raises:
        FileNotFoundError: there is no database at ``db_path``.
        FileExistsError: ``dest`` exists (a backup never overwrites).
    """
    import sqlite3

    if not Path(db_path).is_file():
        raise FileNotFoundError(f"no database at {db_path} (CHORUS_DB_PATH)")
    if Path(dest).exists():
        raise FileExistsError(f"{dest} exists; choose a new file")
    Path(dest).parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{Path(db_path).resolve()}?mode=ro", uri=True)
    try:
        out = sqlite3.connect(dest)
        try:
            src.backup(out)
        finally:
            out.close()
    finally:
        src.close()
    return Path(dest).stat().st_size
