"""The types a checkpoint's ``meta.json`` must give the fields Chorus reads.

`engine.models.checkpoint.read_meta` checks every meta it reads (listing, loading, installing) with
`meta_problem`, so ``"valid_nll": "n/a"`` is refused in one line naming the field instead of
failing later in whatever formats it. Only the fields Chorus reads are checked; others may hold
anything. The model config's values are checked by `engine.models.lstm.ModelConfig` itself. No torch
here: the bot checks uploads with it.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Check = tuple[Callable[[Any], bool], str]  # (test, what the value should be, for the message)


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _whole(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


NUMBER: Check = (_number, "a number")
NUMBER_OR_NULL: Check = (lambda v: v is None or _number(v), "a number or null")
WHOLE: Check = (_whole, "a whole number")
WHOLE_LIST: Check = (lambda v: isinstance(v, list) and all(_whole(x) for x in v), "a list of whole numbers")
TEXT: Check = (lambda v: isinstance(v, str), "a string")
TEXT_LIST: Check = (lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v), "a list of strings")
OBJECT: Check = (lambda v: isinstance(v, dict), "an object")
SHA256: Check = (lambda v: isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v) is not None,
                 "a sha256 in lowercase hex")

# Dotted path -> its check, parents before children; "*" is every value of an object. A field
# left out passes (read_meta requires the ones every checkpoint has).
FIELDS: dict[str, Check] = {
    "content_hash": SHA256, "style": TEXT, "created": TEXT, "chorus_version": TEXT, "size_bytes": WHOLE,
    "model_config": OBJECT, "training": OBJECT, "corpus": OBJECT,
    "metrics": OBJECT, "metrics.*": NUMBER_OR_NULL,
    "sampling": OBJECT, "sampling.temperature": NUMBER, "sampling.top_p": NUMBER, "sampling.guidance": NUMBER,
    "sampling.forms": WHOLE_LIST, "sampling.era": TEXT, "sampling.player": TEXT,
    "conditioning": OBJECT, "conditioning.eras": TEXT_LIST, "conditioning.players": TEXT_LIST,
    "harmony": OBJECT, "harmony.config": OBJECT, "harmony.key_weights": OBJECT, "harmony.key_weights.*": NUMBER,
    "weights": OBJECT, "weights.dtype": TEXT, "weights.packed_from": SHA256,
    "harmony.forms": TEXT_LIST, "harmony.temperature": NUMBER, "harmony.top_p": NUMBER,
}


def _values(meta: dict[str, Any], path: str) -> list[tuple[str, Any]]:
    """(dotted name, value) of each value at ``path`` that is present."""
    found: list[tuple[str, Any]] = [("", meta)]
    for part in path.split("."):
        step: list[tuple[str, Any]] = []
        for name, value in found:
            if not isinstance(value, dict):
                continue  # the parent's own check reports it
            items = value.items() if part == "*" else [(part, value[part])] if part in value else []
            step += [(f"{name}.{key}" if name else str(key), v) for key, v in items]
        found = step
    return found


def meta_problem(meta: dict[str, Any]) -> str | None:
    """The first field of ``meta`` with a wrong type, as a phrase (``"metrics.valid_nll is ..."``), or None."""
    for path, (test, expected) in FIELDS.items():
        for name, value in _values(meta, path):
            if not test(value):
                return f"{name} is {_json_type(value)}, expected {expected}"
    return None


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    return "a list" if isinstance(value, list) else "an object" if isinstance(value, dict) else type(value).__name__
