"""A finished clip as it leaves the engine: audio, MIDI and picture bytes, and its summary."""
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

    PAYLOAD_VERSION = 1  # class constant, not a field (no annotation)

    def to_payload(self) -> dict[str, Any]:
        """The clip as JSON-safe data for the trip back from a worker (bytes as base64; no score)."""
        import base64

        return {"v": self.PAYLOAD_VERSION, "audio_format": self.audio_format, "summary": self.summary,
                "timings": self.timings, **{k: base64.b64encode(getattr(self, k)).decode("ascii")
                                            for k in ("audio", "midi", "picture")}}

    @classmethod
    def from_payload(cls, payload: Any) -> ComposeResult:
        """The result `to_payload` wrote.

        Raises:
            EngineError: another version, a missing or unknown key, or bad base64.
        """
        import base64
        import binascii

        keys = {"v", "audio_format", "summary", "timings", "audio", "midi", "picture"}
        if not isinstance(payload, dict) or payload.get("v") != cls.PAYLOAD_VERSION or set(payload) != keys:
            got = sorted(payload) if isinstance(payload, dict) else type(payload).__name__
            raise EngineError(f"a result payload must be version {cls.PAYLOAD_VERSION} with keys {sorted(keys)}, got {got}")
        if not isinstance(payload["summary"], dict) or not isinstance(payload["timings"], dict):
            raise EngineError("a result payload's summary and timings must be dicts")
        try:
            data = {k: base64.b64decode(payload[k], validate=True) for k in ("audio", "midi", "picture")}
        except (binascii.Error, TypeError, ValueError) as exc:
            raise EngineError("a result payload's files are not base64") from exc
        return cls(audio_format=str(payload["audio_format"]), summary=payload["summary"],
                   timings={str(k): float(v) for k, v in payload["timings"].items()}, **data)
