"""Files: MIDI and MusicXML written, MIDI read, seed MIDI checked, archives opened safely, checkpoints packed.
"""
import lazy_loader as lazy

# the public names, each imported from its module on first use (a light import for the bot)
__getattr__, __dir__, __all__ = lazy.attach(__name__, submod_attrs={
    "midi": ["write_midi"],
    "midiread": ["read_midi", "read_midi_file", "infer_chords"],
    "seed": ["SeedLimits", "SeedMidiError", "check_seed_midi", "read_seed"],
    "archive": ["ArchiveError", "Caps", "members", "survey"],
    "pack": ["pack"],
    "musicxml": ["write_musicxml"],
    "rhythm": ["Event", "write_bars"],
})
