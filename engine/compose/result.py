"""A finished clip as it leaves the engine: audio, MIDI and picture bytes, the clip as written
(JSON, for its lead sheet: `engine.music.written.Written`), and its summary."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.band.score import Score
from engine.errors import EngineError


@dataclass
class ComposeResult:
    """A finished clip: encoded audio, MIDI and PNG bytes, and the summary a user can reproduce it from."""

    audio: bytes
    audio_format: str
    midi: bytes
    picture: bytes
    summary: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)
    score: Score | None = field(default=None, repr=False)
    written: bytes = b""  # `engine.music.written.Written.to_json`; empty from an older worker

    PAYLOAD_VERSION = 2  # class constant, not a field (no annotation)
    FILES = ("audio", "midi", "picture", "written")

    def to_payload(self) -> dict[str, Any]:
        """The clip as JSON-safe data for the trip back from a worker (bytes as base64; no score)."""
        import base64

        return {"v": self.PAYLOAD_VERSION, "audio_format": self.audio_format, "summary": self.summary,
                "timings": self.timings, **{k: base64.b64encode(getattr(self, k)).decode("ascii")
                                            for k in self.FILES}}

    @classmethod
    def from_payload(cls, payload: Any) -> ComposeResult:
        """The result `to_payload` wrote (version 1, from a worker of the version before, has no
        written clip).

        Raises:
            EngineError: another version, a missing or unknown key, or bad base64.
        """
        import base64
        import binascii

        keys = {"v", "audio_format", "summary", "timings", *cls.FILES}
        if isinstance(payload, dict) and payload.get("v") == 1 and set(payload) == keys - {"written"}:
            payload = {**payload, "v": cls.PAYLOAD_VERSION, "written": ""}
        if not isinstance(payload, dict) or payload.get("v") != cls.PAYLOAD_VERSION or set(payload) != keys:
            got = sorted(payload) if isinstance(payload, dict) else type(payload).__name__
            raise EngineError(f"a result payload must be version {cls.PAYLOAD_VERSION} with keys {sorted(keys)}, got {got}")
        if not isinstance(payload["summary"], dict) or not isinstance(payload["timings"], dict):
            raise EngineError("a result payload's summary and timings must be dicts")
        try:
            data = {k: base64.b64decode(payload[k], validate=True) for k in cls.FILES}
        except (binascii.Error, TypeError, ValueError) as exc:
            raise EngineError("a result payload's files are not base64") from exc
        return cls(audio_format=str(payload["audio_format"]), summary=payload["summary"],
                   timings={str(k): float(v) for k, v in payload["timings"].items()}, **data)
