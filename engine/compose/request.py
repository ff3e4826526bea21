"""A compose request: what the user asked for, validated with messages that name the bad value."""
from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Any

from engine.band.arrange import PARTS
from engine.band.styles import BAND_CHOICES
from engine.errors import ChordError, EngineError
from engine.media.render import FORMATS
from engine.models.conditioning import check_era
from engine.music.chords import PITCH_NAMES, Chord, parse_chord
from engine.music.forms import FormError, get_form, parse_key_name, progression
from engine.settings import Settings

MAX_CHANGES_BARS = 64
PAYLOAD_VERSION = 1
# payload key -> the types its value may have (None where the field may be empty)
_PAYLOAD_TYPES: dict[str, tuple[type, ...]] = {
    "v": (int,), "style": (str,), "seconds": (int, float), "tempo": (int, float, type(None)),
    "seed": (int, type(None)), "temperature": (int, float, type(None)), "changes": (str, type(None)),
    "seed_midi": (str, type(None)), "format": (str,), "parts": (list,), "form": (str, type(None)),
    "key": (str, type(None)), "swing": (int, float, type(None)), "era": (str, type(None)),
    "band": (str, type(None)), "feel": (str, type(None)),
}
# keys added to version 1 later: a payload stored before them (a job accepted by an older bot) lacks them
_LATER_KEYS = ("form", "key", "swing", "era", "band", "feel")
FEELS = ("performed", "grid")  # how the lead is played: learned from soloists, or exactly as composed
_LENGTH_RE = re.compile(r"^(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m)?(?:(?P<s>\d+(?:\.\d+)?)s?)?$")


class RequestError(EngineError, ValueError):
    """A request value is out of range or malformed; the message names it and the allowed range."""


def parse_length(text: str | float | int) -> float:
    """Seconds from ``30s``, ``1m30s``, ``90``, ``2m`` (or a number).

    Raises:
        RequestError: not a duration.
    """
    if isinstance(text, int | float):
        return float(text)
    t = str(text).strip().lower().replace(" ", "")
    m = _LENGTH_RE.match(t)
    if not t or not m or not any(m.group(k) for k in "hms"):
        raise RequestError(f"length {text!r} is not a duration like 30s, 1m30s, 90 or 2m")
    return sum(float(m.group(k) or 0) * mult for k, mult in (("h", 3600), ("m", 60), ("s", 1)))


def _fmt_seconds(s: float) -> str:
    return f"{s:g} s"


def parse_changes(text: str) -> tuple[tuple[Chord, ...], ...]:
    """Chord changes: ``"Dm7 G7 Cmaj7 Cmaj7"`` is one chord per bar; with ``|`` each bar's chords
    share it equally (``"Dm7 G7 | Cmaj7"``).

    Raises:
        RequestError: an unknown chord (named), or too many bars.
    """
    text = text.strip()
    if not text:
        raise RequestError("changes are empty: give chords like 'Dm7 G7 Cmaj7 Cmaj7'")
    groups = [g.split() for g in text.split("|")] if "|" in text else [[c] for c in text.split()]
    groups = [g for g in groups if g]
    if len(groups) > MAX_CHANGES_BARS:
        raise RequestError(f"changes have {len(groups)} bars; at most {MAX_CHANGES_BARS} are allowed")
    bars = []
    for group in groups:
        if len(group) > 4:
            raise RequestError(f"a bar of changes holds at most 4 chords, got {' '.join(group)!r}")
        try:
            bars.append(tuple(parse_chord(c) for c in group))
        except ChordError as exc:
            raise RequestError(f"changes: {exc}; or name a progression: blues, minor blues, rhythm, ii-V-I") from exc
    return tuple(bars)


@dataclass(frozen=True)
class ComposeRequest:
    """A validated request. Build it with `ComposeRequest.build`.

    Attributes:
        style: a style name that maps to a checkpoint.
        seconds: length of the clip.
        tempo: quarter-note bpm, or None to let the style pick.
        seed: sampling seed, or None for a random one (reported back).
        temperature: sampling temperature, or None for the checkpoint's default.
        changes: chord changes per bar, or None.
        seed_midi: a user's MIDI file to continue, or None.
        audio_format: ogg, mp3 or flac.
        parts: the band parts to play.
        changes_text: the changes as the user wrote them (a chord text or a named progression
            such as ``blues``, which `engine.compose.song` transposes to the key).
        form: a song form name (`engine.music.forms.FORM_CHOICES`), or None for the style's own.
        key: a key name such as ``Bb major`` or ``F minor``, or None to draw the style's keys.
        swing: the swing ratio of the eighths (1.0 straight, 2.0 triplet, at most 3.0), or None
            for the style's feel at the tempo.
        era: a jazz era (`engine.models.conditioning.ERA_CHOICES`, lower case), or None for the mix of all.
        band: another band of the style (`engine.band.styles.BAND_CHOICES`, e.g. ``strings`` for bach),
            or None for the style's own; a style without that band refuses it when composing.
    """

    style: str
    seconds: float
    tempo: float | None = None
    seed: int | None = None
    temperature: float | None = None
    changes: tuple[tuple[Chord, ...], ...] | None = None
    seed_midi: bytes | None = field(default=None, repr=False)
    audio_format: str = "ogg"
    parts: frozenset[str] = frozenset(PARTS)
    changes_text: str | None = None
    form: str | None = None
    key: str | None = None
    swing: float | None = None
    era: str | None = None
    band: str | None = None
    feel: str | None = None  # `FEELS`; None: performed

    @property
    def key_pc(self) -> tuple[int, str] | None:
        """(tonic pitch class, mode) of ``key``, or None."""
        return parse_key_name(self.key) if self.key else None

    @classmethod
    def build(cls, style: str, length: str | float, settings: Settings, styles: list[str] | tuple[str, ...],
              tempo: float | None = None, seed: int | None = None, temperature: float | None = None,
              changes: str | None = None, seed_midi: bytes | None = None, audio_format: str = "ogg",
              parts: frozenset[str] | set[str] | None = None, form: str | None = None,
              key: str | None = None, swing: float | None = None, era: str | None = None,
              band: str | None = None, seeded: bool = False, feel: str | None = None) -> ComposeRequest:
        """Validate every value against the settings' ranges. ``seeded``: a seed MIDI file comes later
        (the bot downloads it after these checks), so the rules of a continuation apply already.

        Raises:
            RequestError: one line naming the bad value and what is allowed.
        """
        style = (style or "").strip().lower()
        if style not in styles:
            known = ", ".join(sorted(styles)) or "none installed"
            raise RequestError(f"unknown style {style!r}: choose from {known}")
        seconds = parse_length(length)
        if not settings.min_seconds <= seconds <= settings.max_seconds:
            raise RequestError(f"length {length} is {_fmt_seconds(seconds)}; allowed {settings.min_seconds:g}-"
                               f"{settings.max_seconds:g} s")
        if tempo is not None and not settings.min_tempo <= tempo <= settings.max_tempo:
            raise RequestError(f"tempo {tempo:g} bpm is out of range; allowed {settings.min_tempo:g}-{settings.max_tempo:g} bpm")
        if temperature is not None and not settings.min_temperature <= temperature <= settings.max_temperature:
            raise RequestError(f"temperature {temperature:g} is out of range; allowed {settings.min_temperature:g}-"
                               f"{settings.max_temperature:g}")
        if seed is not None and not 0 <= seed < 2**63:
            raise RequestError(f"seed {seed} is out of range; allowed 0 to 2^63-1")
        if audio_format not in FORMATS:
            raise RequestError(f"format {audio_format!r} is not offered; choose from {', '.join(FORMATS)}")
        if seed_midi is not None and len(seed_midi) > settings.max_seed_bytes:
            raise RequestError(f"the MIDI file is {len(seed_midi):,} bytes; at most {settings.max_seed_bytes:,} are accepted")
        chosen = frozenset(PARTS) if parts is None else frozenset(parts)
        if not chosen or not chosen <= set(PARTS):
            raise RequestError(f"parts must be some of {', '.join(PARTS)}, got {', '.join(sorted(chosen)) or 'none'}")
        if swing is not None and not 1.0 <= swing <= 3.0:
            raise RequestError(f"swing {swing:g} is out of range; allowed 1.0 (straight) to 3.0")
        form_name = _form_name(form) if form else None
        key_name = _key_name(key) if key else None
        if seeded or seed_midi is not None:
            # a continuation goes on in the seed's key over chords of its own (engine.compose.composer plans no song)
            given = [name for name, value in (("key", key), ("form", form), ("changes", changes)) if value]
            if given:
                raise RequestError(f"a continuation follows your MIDI file's key and harmony, so it takes no "
                                   f"{' or '.join(given)}; leave {'it' if len(given) == 1 else 'them'} out")
        return cls(style, seconds, tempo, seed, temperature, _changes(changes), seed_midi, audio_format, chosen,
                   changes, form_name, key_name, swing, _era_name(era), _band_name(band), _feel_name(feel))

    def to_payload(self) -> dict[str, Any]:
        """The request as JSON-safe data, the one shape it has outside this process.

        It goes into SQLite, through the local workers' pipe and into Celery's JSON messages
        unchanged. ``seed_midi`` is base64 inside it (at most ``max_seed_bytes``, so at most a
        third more), which keeps the payload one self-contained JSON value everywhere. Chord
        changes travel as the text the user gave.

        Raises:
            RequestError: changes without their text (a request not made by `build`).
        """
        if self.changes is not None and self.changes_text is None:
            raise RequestError("a request with chord changes needs their text to be sent")
        return {"v": PAYLOAD_VERSION, "style": self.style, "seconds": self.seconds, "tempo": self.tempo,
                "seed": self.seed, "temperature": self.temperature, "changes": self.changes_text,
                "seed_midi": base64.b64encode(self.seed_midi).decode("ascii") if self.seed_midi is not None else None,
                "format": self.audio_format, "parts": sorted(self.parts), "form": self.form, "key": self.key,
                "swing": self.swing, "era": self.era, "band": self.band, "feel": self.feel}

    @classmethod
    def from_payload(cls, payload: Any) -> ComposeRequest:
        """The request `to_payload` wrote. Checks the shape and types only (ranges were checked by
        `build` where the request came in); the chord changes are parsed again from their text.

        Raises:
            RequestError: another version, an unknown or missing key, a wrong type, bad base64,
                unknown parts or chords.
        """
        if not isinstance(payload, dict):
            raise RequestError(f"a request payload is a dict, got {type(payload).__name__}")
        if payload.get("v") != PAYLOAD_VERSION:
            raise RequestError(f"request payload version {payload.get('v')!r} is not {PAYLOAD_VERSION}")
        payload = {**{k: None for k in _LATER_KEYS}, **payload}
        keys = set(payload)
        if keys != set(_PAYLOAD_TYPES):
            extra, missing = sorted(keys - set(_PAYLOAD_TYPES)), sorted(set(_PAYLOAD_TYPES) - keys)
            raise RequestError(f"request payload keys are wrong: unknown {extra or 'none'}, missing {missing or 'none'}")
        for key, types in _PAYLOAD_TYPES.items():
            value = payload[key]
            if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
                raise RequestError(f"request payload {key!r} is a {type(value).__name__}, not "
                                   f"{' or '.join(t.__name__ for t in types)}")
        parts = payload["parts"]
        if not parts or not all(isinstance(p, str) for p in parts) or not set(parts) <= set(PARTS):
            raise RequestError(f"request payload parts must be some of {', '.join(PARTS)}, got {parts!r}")
        seed_midi = None
        if payload["seed_midi"] is not None:
            try:
                seed_midi = base64.b64decode(payload["seed_midi"], validate=True)
            except (binascii.Error, ValueError) as exc:
                raise RequestError("request payload seed_midi is not base64") from exc
        text = payload["changes"]
        return cls(payload["style"], float(payload["seconds"]),
                   None if payload["tempo"] is None else float(payload["tempo"]), payload["seed"],
                   None if payload["temperature"] is None else float(payload["temperature"]),
                   _changes(text), seed_midi, payload["format"], frozenset(parts), text,
                   _form_name(payload["form"]) if payload["form"] else None,
                   _key_name(payload["key"]) if payload["key"] else None,
                   None if payload["swing"] is None else float(payload["swing"]), _era_name(payload["era"]),
                   _band_name(payload["band"]), _feel_name(payload["feel"]))


def _changes(text: str | None) -> tuple[tuple[Chord, ...], ...] | None:
    """Parsed chord text; None for no text or a named progression (resolved in the key later)."""
    if not text or progression(text) is not None:
        return None
    return parse_changes(text)


def _form_name(text: str) -> str:
    try:
        return get_form(text).name
    except FormError as exc:
        raise RequestError(str(exc)) from exc


def _key_name(text: str) -> str:
    try:
        tonic, mode = parse_key_name(text)
    except FormError as exc:
        raise RequestError(str(exc)) from exc
    return f"{PITCH_NAMES[tonic]} {mode}"


def _era_name(text: str | None) -> str | None:
    try:
        return check_era(text)
    except EngineError as exc:
        raise RequestError(str(exc)) from exc


def _band_name(text: str | None) -> str | None:
    return _choice(text, BAND_CHOICES, "band {!r} is not offered; choose from {}")


def _feel_name(text: str | None) -> str | None:
    """``performed`` or ``grid`` (None stays None: performed)."""
    return _choice(text, FEELS, "feel {!r} is not one of {}")


def _choice(text: str | None, choices: tuple[str, ...], message: str) -> str | None:
    """``text`` as one of ``choices`` (case and spaces aside), None as None.

    Raises:
        RequestError: another word, ``message`` formatted with it and the choices.
    """
    if text is None:
        return None
    name = text.strip().lower()
    if name not in choices:
        raise RequestError(message.format(text, ", ".join(choices)))
    return name
