"""Checkpoints shared through Redis, so a swap reaches every Celery worker with no restart.

The bot publishes the checkpoint it resolved for a job (``model.safetensors`` and ``meta.json``)
under keys named by the content hash, once (``SET NX`` with a TTL). A worker that lacks that
version looks in its own checkpoints folder first, then in its cache, and only then fetches the
bytes: size-capped, sha256-verified against the hash, written into ``<cache>/<hash>/<name>/``
atomically. Nothing here imports torch; loading stays with `engine.models.checkpoint`.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from engine.models.checkpoint import MAX_META_BYTES, META, WEIGHTS, CheckpointError, read_meta

log = logging.getLogger(__name__)
KEY_PREFIX = "chorus:ckpt:"
PUBLISH_TTL_S = 7 * 24 * 3600  # refreshed whenever a job uses the checkpoint
MAX_CACHED = 6  # checkpoints a worker keeps fetched on disk (least recently used removed first)


def model_key(content_hash: str) -> str:
    return f"{KEY_PREFIX}{content_hash}:model"


def meta_key(content_hash: str) -> str:
    return f"{KEY_PREFIX}{content_hash}:meta"


def publish(client: Any, folder: Path, content_hash: str, max_bytes: int, ttl_s: int = PUBLISH_TTL_S) -> bool:
    """Put a checkpoint's bytes into Redis unless they are there already (then refresh the TTL).

    Args:
        client: a ``redis.Redis`` client.
        folder: the checkpoint folder (``model.safetensors`` + ``meta.json``).
        content_hash: the hash the job asks for; nothing is published if the folder holds another.
        max_bytes: the largest weights file to publish.

    Returns:
        True when the bytes are in Redis now (published now or before).

    Raises:
        redis.ConnectionError and the like when Redis is unreachable.
    """
    mk, wk = meta_key(content_hash), model_key(content_hash)
    if client.exists(wk) and client.exists(mk):
        client.expire(wk, ttl_s)
        client.expire(mk, ttl_s)
        return True
    try:
        meta = read_meta(folder)
    except CheckpointError as exc:
        log.warning("not publishing checkpoint %s: %s", folder.name, exc)
        return False
    if meta["content_hash"] != content_hash:
        log.warning("not publishing checkpoint %s: it now holds %s, the job wants %s", folder.name,
                    str(meta["content_hash"])[:12], content_hash[:12])
        return False
    weights = folder / WEIGHTS
    if weights.stat().st_size > max_bytes:
        log.warning("not publishing checkpoint %s: %d bytes is over the %d byte cap", folder.name,
                    weights.stat().st_size, max_bytes)
        return False
    data = weights.read_bytes()
    if hashlib.sha256(data).hexdigest() != content_hash:
        log.warning("not publishing checkpoint %s: its weights do not match its content hash", folder.name)
        return False
    # The weights go first: a worker that sees the meta can count on the model being there.
    client.set(wk, data, nx=True, ex=ttl_s)
    client.set(mk, json.dumps({**meta, "name": folder.name}).encode(), nx=True, ex=ttl_s)
    log.info("published checkpoint %s (%s, %d bytes) to Redis", folder.name, content_hash[:12], len(data))
    return True


def find_local(root: Path, name: str, content_hash: str) -> Path | None:
    """The folder under ``root`` holding ``content_hash``: ``root/name`` first, then any other."""
    root = Path(root)
    candidates = [root / name] + (sorted(p for p in root.iterdir() if p.name != name) if root.is_dir() else [])
    for folder in candidates:
        if not folder.is_dir() or folder.name.startswith("."):
            continue
        try:
            if read_meta(folder)["content_hash"] == content_hash:
                return folder
        except CheckpointError:
            continue
    return None


def cached(cache_root: Path, content_hash: str) -> Path | None:
    """The cached copy of a checkpoint fetched before (marked as used now), or None."""
    folder = Path(cache_root) / content_hash
    if not folder.is_dir():
        return None
    for sub in folder.iterdir():
        try:
            if sub.is_dir() and read_meta(sub)["content_hash"] == content_hash:
                os.utime(folder)  # the cache's recency: see `trim_cache`
                return sub
        except (CheckpointError, OSError):
            continue
    return None


def trim_cache(cache_root: Path, keep: int = MAX_CACHED) -> list[str]:
    """Remove all but the ``keep`` most recently used checkpoints from a worker's cache.

    Returns:
        The content hashes removed.
    """
    root = Path(cache_root)
    if not root.is_dir():
        return []
    entries = sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
                     key=lambda p: p.stat().st_mtime, reverse=True)
    removed = []
    for old in entries[keep:]:
        shutil.rmtree(old, ignore_errors=True)
        removed.append(old.name)
    if removed:
        log.info("checkpoint cache: removed %d least recently used (%s)", len(removed),
                 ", ".join(h[:12] for h in removed))
    return removed


def fetch(client: Any, cache_root: Path, name: str, content_hash: str, max_bytes: int) -> Path:
    """Download a published checkpoint into ``cache_root/<hash>/<name>`` and return that folder.

    Raises:
        CheckpointError: not published, too large, or the bytes do not match the hash.
    """
    short = content_hash[:12]
    size = client.strlen(model_key(content_hash))
    if not size:
        raise CheckpointError(f"checkpoint {name} ({short}) is not on this worker and was not published to Redis")
    if size > max_bytes:
        raise CheckpointError(f"checkpoint {name} ({short}) is {size:,} bytes, over this worker's {max_bytes:,} byte cap")
    raw_meta = client.get(meta_key(content_hash))
    if raw_meta is None or len(raw_meta) > MAX_META_BYTES:
        raise CheckpointError(f"checkpoint {name} ({short}): its published meta.json is missing or too large")
    data = client.get(model_key(content_hash))
    if data is None or hashlib.sha256(data).hexdigest() != content_hash:
        raise CheckpointError(f"checkpoint {name} ({short}): the published weights do not match the hash")
    try:
        meta = json.loads(raw_meta)
    except ValueError as exc:
        raise CheckpointError(f"checkpoint {name} ({short}): its published meta.json is not JSON") from exc
    if not isinstance(meta, dict) or meta.get("content_hash") != content_hash:
        raise CheckpointError(f"checkpoint {name} ({short}): the published meta.json is for another checkpoint")
    meta.pop("name", None)
    folder_name = name if name and not name.startswith(".") and "/" not in name else "checkpoint"
    target_parent = Path(cache_root) / content_hash
    staging = Path(cache_root) / f".fetch-{uuid.uuid4().hex[:8]}"
    (staging / folder_name).mkdir(parents=True)
    try:
        (staging / folder_name / WEIGHTS).write_bytes(data)
        (staging / folder_name / META).write_text(json.dumps(meta, indent=2) + "\n")
        read_meta(staging / folder_name)  # the same checks as a local folder
        try:
            staging.rename(target_parent)
        except OSError:  # another thread of this worker got there first, or a stale partial copy
            if cached(cache_root, content_hash) is None:
                shutil.rmtree(target_parent, ignore_errors=True)
                staging.rename(target_parent)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    found = cached(cache_root, content_hash)
    if found is None:
        raise CheckpointError(f"checkpoint {name} ({short}) could not be written to the worker's cache")
    log.info("fetched checkpoint %s (%s, %d bytes) from Redis", name, short, len(data))
    trim_cache(cache_root)
    return found


def resolve(client: Any, checkpoints_dir: Path, cache_root: Path, name: str, content_hash: str,
            max_bytes: int) -> Path:
    """The local folder for a job's checkpoint: own folder, then cache, then fetched from Redis.

    An empty ``content_hash`` (a job from an older bot) means "whatever ``name`` holds here".

    Raises:
        CheckpointError: no copy anywhere, or a fetched copy fails its checks.
    """
    if not content_hash:
        return Path(checkpoints_dir) / name
    found = find_local(checkpoints_dir, name, content_hash) or cached(cache_root, content_hash)
    if found is not None:
        return found
    return fetch(client, cache_root, name, content_hash, max_bytes)
