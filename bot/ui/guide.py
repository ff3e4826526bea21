"""The words of /help and /styles: what Chorus does and what each style sounds like, for musicians."""
from __future__ import annotations

from collections.abc import Mapping

from bot.settings import BotSettings
from bot.store.catalog import Installed
from bot.ui import limits
from engine.band.arrange import PARTS
from engine.band.styles import STYLES, Style
from engine.media.render import FORMATS
from engine.music.forms import FORM_CHOICES

# General MIDI programs (0-based) the registered bands use, as a musician names them
INSTRUMENTS = {0: "piano", 24: "nylon guitar", 25: "steel-string guitar", 26: "jazz guitar",
               27: "clean electric guitar", 32: "upright bass", 33: "electric bass", 73: "flute", 74: "recorder",
               19: "church organ", 40: "violin", 41: "viola", 42: "cello", 43: "contrabass"}
SOUNDS = {
    "jazz": "a small-group jazz head and solo: swung eighths, seventh chords, walking bass and brushed ride",
    "folk": "a tune from the session: plain triads strummed, a singable melody in strains, no drums",
    "metheny": "Pat Metheny's side of jazz: clean guitar lines, Lydian major sevenths, chords in fourths",
    "bach": "a four-part chorale after Bach: soprano, alto, tenor and bass by the rules, cadences held under fermatas",
}


def help_text(settings: BotSettings) -> str:
    """The /help answer (ephemeral): what, an example, the limits and how to write changes."""
    return limits.content("\n".join([
        "**Chorus** composes short instrumental clips with a small band: you get the audio, the MIDI file"
        " and a picture of the notes. Under each clip: 🎲 Another take, ⏩ Continue, 🎼 Variation.",
        "**Example:** `/compose style:jazz length:30s tempo:160 changes:Dm7 G7 Cmaj7 Cmaj7 key:C major`",
        "**Continue a tune:** attach a MIDI file as `seed_midi`, or right-click a message with one:"
        " Apps → Continue with Chorus.",
        f"**Limits:** {settings.min_seconds:g}–{settings.max_seconds:g} s long, tempo {settings.min_tempo:g}–"
        f"{settings.max_tempo:g} bpm, temperature {settings.min_temperature:g}–{settings.max_temperature:g}"
        f" (lower is safer), MIDI uploads up to {settings.max_seed_bytes // 1024} KiB; formats {', '.join(FORMATS)};"
        f" parts {', '.join(PARTS)} (leave some out with `without`). Each member may have"
        f" {settings.user_max_pending} requests in the queue, {settings.user_cooldown_s:g} s apart.",
        "**Changes:** one chord per bar, `Dm7 G7 Cmaj7 Cmaj7`; several in a bar with `|` between bars,"
        " `Dm7 G7 | Cmaj7` (up to 4 a bar). Chords like C, Cm, C7, Cmaj7, Cm7, Cm7b5, Cdim7, C6, C9, Bb7, F#m7;"
        " or name a progression: blues, minor blues, rhythm, ii-V-I.",
        f"**Forms:** {', '.join(FORM_CHOICES)}. `/styles` tells what each style sounds like.",
    ]))


def _band(style: Style) -> str:
    band = style.band
    if band.chorale:
        voices = [INSTRUMENTS.get(p, "voice") for p in band.voice_programs or ()]
        sound = voices[0] if len(set(voices)) == 1 else ", ".join(voices)
        others = "; `band:` " + ", ".join(f"{name}" for name in sorted(style.bands)) if style.bands else ""
        return f"soprano, alto, tenor and bass on {sound}{others}"
    parts = [f"{INSTRUMENTS.get(band.lead_program, 'lead')} lead", f"{INSTRUMENTS.get(band.comp_program, 'chords')}"
             f" {'comping' if band.comping == 'book' else 'strumming'}",
             f"{'walking' if band.bass == 'walking' else 'root-and-fifth'} {INSTRUMENTS.get(band.bass_program, 'bass')}"]
    if band.drums:
        parts.append("drums")
    return ", ".join(parts)


def style_text(name: str, installed: Installed) -> str:
    """One style: its sound, band and typical tempo, then its checkpoint's numbers on one short line."""
    style = STYLES.get(installed.style) or STYLES.get(name)
    lines = [f"**{name}**: {SOUNDS.get(name) or SOUNDS.get(installed.style, 'a style of its own')}"]
    if style is not None:
        low, high = style.sampling.tempo
        meters = ", ".join(f"{a}/{b}" for a, b in dict.fromkeys(style.sampling.meters))  # a meter repeated to weight it, once
        lines.append(f"  Band: {_band(style)}. Typically {low}–{high} bpm, {meters}"
                     f"{', swung' if style.band.swing else ''}.")
    lines.append(f"  -# Training: {installed.describe()}")
    return "\n".join(lines)


def styles_text(styles: Mapping[str, Installed]) -> str:
    """The /styles answer; "No style is installed." when empty."""
    return "\n".join(style_text(name, ck) for name, ck in sorted(styles.items())) or "No style is installed."
