"""Music theory: chords and keys, lead sheets, forms, motifs and the measure/chord grammar.

Nothing here knows about models, bands or files; every other engine package builds on it.
"""
import lazy_loader as lazy

# the public names, each imported from its module on first use (a light import for the bot)
__getattr__, __dir__, __all__ = lazy.attach(__name__, submod_attrs={
    "chords": ["Chord", "PITCH_NAMES", "parse_chord", "chord_tones", "scale_tones"],
    "keys": ["MIDI_KEYS", "estimate_key"],
    "leadsheet": ["LeadSheet", "Measure", "Note"],
    "forms": ["Form", "FormError", "get_form", "progression"],
    "motif": ["MelodicForm", "shape_melody"],
    "written": ["Written", "Voice", "Section", "WrittenError"],
    "spelling": ["spell_note", "spell_root", "key_tonic", "key_fifths"],
    "grammar": ["GRID", "METERS", "QNote", "QPiece", "bar_units", "encode", "decode", "quantize"],
})
