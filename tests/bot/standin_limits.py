"""Discord's rules on a message body, as the stand-in enforces them, and who a message pings.

Written from Discord's documentation (Channel → Create Message, Embed Limits, Allowed Mentions),
independently of the bot's own `bot.ui.limits`, so a bot that breaks a limit fails a test here the way
it would fail on Discord: 400 with code 50035 "Invalid Form Body" and the offending field named.
"""
from __future__ import annotations

import re
from typing import Any

Json = dict[str, Any]
CONTENT = 2000
EMBEDS = 10
EMBED_TEXT = {"title": 256, "description": 4096}
FOOTER_TEXT, AUTHOR_NAME = 2048, 256
FIELDS, FIELD_NAME, FIELD_VALUE = 25, 256, 1024
EMBED_TOTAL = 6000  # characters of every embed of one message together
FILES = 10  # attachments per message
USER_MENTION = re.compile(r"<@!?(\d+)>")
ROLE_MENTION = re.compile(r"<@&(\d+)>")


def _too_long(path: str, limit: int) -> tuple[str, str, str]:
    return path, "BASE_TYPE_MAX_LENGTH", f"Must be {limit} or fewer in length."


def _embed_errors(i: int, embed: Json) -> tuple[list[tuple[str, str, str]], int]:
    """The errors of one embed, and its size toward `EMBED_TOTAL`."""
    errors, size = [], 0
    for key, limit in EMBED_TEXT.items():
        text = str(embed.get(key) or "")
        size += len(text)
        if len(text) > limit:
            errors.append(_too_long(f"embeds.{i}.{key}", limit))
    for key, sub, limit in (("footer", "text", FOOTER_TEXT), ("author", "name", AUTHOR_NAME)):
        text = str((embed.get(key) or {}).get(sub) or "")
        size += len(text)
        if len(text) > limit:
            errors.append(_too_long(f"embeds.{i}.{key}.{sub}", limit))
    fields = embed.get("fields") or []
    if len(fields) > FIELDS:
        errors.append(_too_long(f"embeds.{i}.fields", FIELDS))
    for j, field in enumerate(fields):
        for key, limit in (("name", FIELD_NAME), ("value", FIELD_VALUE)):
            text = str(field.get(key) or "")
            size += len(text)
            if not text.strip():
                errors.append((f"embeds.{i}.fields.{j}.{key}", "BASE_TYPE_REQUIRED", "This field is required"))
            elif len(text) > limit:
                errors.append(_too_long(f"embeds.{i}.fields.{j}.{key}", limit))
    return errors, size


def form_errors(body: Json, files: list[Json]) -> list[tuple[str, str, str]]:
    """(path, code, message) for each rule ``body`` (and its uploaded ``files``) breaks."""
    errors = []
    if len(str(body.get("content") or "")) > CONTENT:
        errors.append(_too_long("content", CONTENT))
    embeds = body.get("embeds") or []
    if len(embeds) > EMBEDS:
        errors.append(_too_long("embeds", EMBEDS))
    total = 0
    for i, embed in enumerate(embeds[:EMBEDS]):
        found, size = _embed_errors(i, embed)
        errors += found
        total += size
    if total > EMBED_TOTAL:
        errors.append(("embeds", "MAX_EMBED_SIZE_EXCEEDED", f"Embed size exceeds maximum size of {EMBED_TOTAL}"))
    attachments = body.get("attachments")
    if len(files) > FILES or (attachments is not None and len(attachments) > FILES):
        errors.append(_too_long("attachments", FILES))
    return errors


def error_body(errors: list[tuple[str, str, str]]) -> Json:
    """Discord's 50035 answer: the errors nested by path, each under ``_errors``."""
    tree: Json = {}
    for path, code, message in errors:
        node = tree
        for part in path.split("."):
            node = node.setdefault(part, {})
        node.setdefault("_errors", []).append({"code": code, "message": message})
    return {"code": 50035, "message": "Invalid Form Body", "errors": tree}


def mentions(content: str, allowed: Json | None, role_ids: set[str]) -> tuple[bool, list[str], list[str]]:
    """Who a message's content pings: (everyone/here, user ids, role ids), after ``allowed_mentions``.

    With no ``allowed_mentions`` Discord parses everything in the content.
    """
    if allowed is None:
        allowed = {"parse": ["everyone", "users", "roles"]}
    parse = set(allowed.get("parse") or [])
    users = [u for u in USER_MENTION.findall(content)
             if "users" in parse or u in {str(x) for x in allowed.get("users") or []}]
    roles = [r for r in ROLE_MENTION.findall(content) if r in role_ids and
             ("roles" in parse or r in {str(x) for x in allowed.get("roles") or []})]
    everyone = "everyone" in parse and ("@everyone" in content or "@here" in content)
    return everyone, list(dict.fromkeys(users)), list(dict.fromkeys(roles))
