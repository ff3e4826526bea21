"""The lead sheet of a clip (`engine.compose.sheet`): MusicXML that the MusicXML 4.0 schema accepts,
whose notes are the lead of clip.mid, whose chord symbols are the embed's changes, in the clip's
meter; the engraved PNG and PDF; spelling and written rhythm as a musician reads them."""
from __future__ import annotations

import dataclasses
import importlib.resources
import io
import re
import xml.etree.ElementTree as ET
from functools import lru_cache

import mido
import pytest

from engine.compose.composer import Composer
from engine.compose.request import ComposeRequest
from engine.compose.sheet import make_sheet
from engine.formats.musicxml import find_repeats, write_musicxml
from engine.formats.rhythm import write_bars
from engine.music.chords import parse_chord
from engine.music.spelling import chord_text, spell_note, spell_root
from engine.music.written import Written
from engine.settings import Settings

SETTINGS = Settings.from_env(environ={}, dotenv=None)  # the shipped checkpoints


@lru_cache(maxsize=8)
def clip(style: str, seed: int, length: str = "30s"):
    """A clip of a shipped checkpoint, the lead as written (feel grid) and its written notes."""
    req = ComposeRequest.build(style, length, SETTINGS, [style], seed=seed, feel="grid", audio_format="flac")
    result = Composer(SETTINGS, numpy=True, stream_audio=False).compose(req)
    return result, Written.from_json(result.written)


@lru_cache(maxsize=1)
def schema():
    import xmlschema

    return xmlschema.XMLSchema(str(importlib.resources.files("musicxml") / "generate_classes" / "musicxml_4_0.xsd"))


def played(musicxml: bytes, part: int = 0) -> list[tuple[float, int]]:
    """(onset in beats, MIDI pitch) of every note struck, repeats taken as played, ties joined."""
    from music21 import converter

    score = converter.parse(musicxml, format="musicxml").expandRepeats()
    flat = score.parts[part].stripTies().flatten()
    return [(round(float(n.offset), 3), n.pitch.midi) for n in flat.getElementsByClass("Note")]


def midi_lead(midi: bytes) -> list[tuple[float, int]]:
    """(onset in beats, pitch) of the Lead track of a MIDI file."""
    mid = mido.MidiFile(file=io.BytesIO(midi))
    (track,) = [t for t in mid.tracks if t.name == "Lead"]
    now, out = 0, []
    for msg in track:
        now += msg.time
        if msg.type == "note_on" and msg.velocity:
            out.append((round(now / mid.ticks_per_beat, 3), msg.note))
    return out


def harmonies(musicxml: bytes) -> list[tuple[int, str]]:
    """(root pitch class, the symbol's text after the root) of every chord symbol as played
    (repeats taken), a symbol the same as the one before left out."""
    from music21 import converter

    score = converter.parse(musicxml, format="musicxml").expandRepeats()
    out: list[tuple[int, str]] = []
    for cs in score.parts[0].flatten().getElementsByClass("ChordSymbol"):
        here = (cs.root().pitchClass, cs.chordKindStr)
        if not out or out[-1] != here:
            out.append(here)
    return out


def embed_changes(text: str) -> list[tuple[int, str]]:
    """The embed's changes ("Dm7 G7 | % | ...") as (root, text) with a chord the same as the one before left out."""
    out: list[tuple[int, str]] = []
    for bar in text.split("|"):
        for name in bar.split():
            if name == "%":
                continue
            c = parse_chord(name)
            if not out or out[-1] != (c.root, chord_text(c)):
                out.append((c.root, chord_text(c)))
    return out


@pytest.mark.parametrize("style,seed", [("jazz", 7), ("folk", 7), ("bach", 9)])
def test_the_lead_sheet_is_musicxml_4_as_the_schema_says(style: str, seed: int) -> None:
    result, written = clip(style, seed)
    xml = write_musicxml(written)
    errors = [f"{e.path}: {e.reason}" for e in schema().iter_errors(io.BytesIO(xml))]
    assert errors == []
    assert ET.fromstring(xml).get("version") == "4.0"


@pytest.mark.parametrize("style,seed,length", [("jazz", 7, "30s"), ("folk", 7, "45s")])
def test_the_notes_are_the_lead_of_clip_mid_one_for_one(style: str, seed: int, length: str) -> None:
    result, written = clip(style, seed, length)
    assert played(write_musicxml(written)) == midi_lead(result.midi)


def test_a_strain_played_again_is_written_once_with_two_endings() -> None:
    _, written = clip("folk", 7, "45s")
    assert find_repeats(written)[0] == (0, 8, 1)  # AABB: the A strain's second time differs in its last bar
    xml = write_musicxml(written)
    root = ET.fromstring(xml)
    assert [e.get("number") for e in root.iter("ending") if e.get("type") == "start"][:2] == ["1", "2"]
    assert len(list(root.iter("measure"))) < written.bars
    assert [r.text for r in root.iter("rehearsal")][:2] == ["A", "B"]


@pytest.mark.parametrize("style,seed", [("jazz", 7), ("folk", 7), ("bach", 9)])
def test_the_chord_symbols_are_the_embeds_changes(style: str, seed: int) -> None:
    result, written = clip(style, seed)
    assert harmonies(write_musicxml(written)) == embed_changes(result.summary["changes"])


def test_a_chorale_in_three_four_is_four_voices_on_two_staves() -> None:
    _, written = clip("bach", 9)
    assert written.meter == (3, 4)
    root = ET.fromstring(write_musicxml(written))
    assert (root.findtext(".//time/beats"), root.findtext(".//time/beat-type")) == ("3", "4")
    assert root.findtext(".//staves") == "2" and {c.findtext("sign") for c in root.iter("clef")} == {"G", "F"}
    assert len({(n.findtext("staff"), n.findtext("voice")) for n in root.iter("note")}) == 4  # S, A | T, B
    fermatas = {(n.findtext("voice"), n.find("notations/fermata").get("type")) for n in root.iter("note")
                if n.find("notations/fermata") is not None}
    assert fermatas == {("1", "upright"), ("2", "inverted")}  # over soprano and tenor, under alto and bass
    assert root.findtext(".//part-name") == "Choir"


def test_a_folk_tune_in_six_eight_keeps_its_meter_bar_by_bar() -> None:
    from music21 import converter

    _, written = clip("folk", 7)
    assert written.meter == (6, 8)
    score = converter.parse(write_musicxml(written), format="musicxml")
    measures = list(score.parts[0].getElementsByClass("Measure"))
    assert {m.timeSignature.ratioString for m in measures if m.timeSignature} == {"6/8"}
    assert all(m.duration.quarterLength == 3.0 for m in measures)


def test_the_sheet_is_engraved_as_png_and_pdf() -> None:
    from PIL import Image

    _, written = clip("jazz", 7)
    sheet = make_sheet(written, pdf=True)
    image = Image.open(io.BytesIO(sheet.png))
    assert image.width == 1240 and image.height > 600 and sheet.pages == 2  # 24 bars: 16 on a page
    assert sheet.pdf is not None and sheet.pdf.startswith(b"%PDF")
    assert len(re.findall(rb"/Type\s*/Page\b", sheet.pdf)) == 2  # A4 pages, 16 bars on the first


def test_notes_are_spelled_in_the_key_and_against_the_chord() -> None:
    assert spell_note(70, 5, "major")[:2] == ("B", -1)  # Bb in F, not A#
    assert spell_note(66, 0, "major", parse_chord("D7"))[:2] == ("F", 1)  # the third of D7
    assert spell_note(68, 0, "major", parse_chord("Bb7"))[:2] == ("A", -1)  # the seventh of Bb7
    assert spell_note(70, 7, "major", parse_chord("G7(#9)"))[:2] == ("A", 1)  # the #9
    assert spell_root(6, 0, "major", "m7b5") == ("F", 1) and spell_root(6, 0, "major", "7") == ("G", -1)
    assert spell_note(61, 0, "major", None, next_pitch=64)[:2] == ("C", 1)  # C major: up sharp,
    assert spell_note(61, 0, "major", None, next_pitch=57)[:2] == ("D", -1)  # down flat
    assert spell_note(60, 1, "minor", parse_chord("G#7")) == ("B", 1, 3)  # C# minor's leading tone: B#3 is MIDI 60
    assert spell_root(3, 2, "major", "dim7") == ("D", 1)  # D#dim7 leads to Em in D, not Ebdim7


def test_passing_notes_are_spelled_by_the_key_and_where_they_lead() -> None:
    bb, db6, bb7, bbmaj7 = 10, parse_chord("Db6"), parse_chord("Bb7"), parse_chord("Bbmaj7")
    assert spell_note(66, bb, "major", db6, next_pitch=67)[:2] == ("G", -1)  # over Db6 the fourth is Gb, not F#
    assert spell_note(66, bb, "major", bb7, next_pitch=72)[:2] == ("G", -1)  # B-flat major: outside notes flat
    assert spell_note(73, bb, "major", bbmaj7, next_pitch=74)[:2] == ("C", 1)  # but C# leading up into D
    assert spell_note(71, bb, "major", bbmaj7, next_pitch=74)[:2] == ("B", 0)  # a natural stays one
    assert spell_note(70, 5, "major", parse_chord("C7"), next_pitch=69)[:2] == ("B", -1)  # Bb in F, on its way down
    assert spell_note(70, 5, "major", parse_chord("C7"), next_pitch=72)[:2] == ("B", -1)  # and up
    e = parse_chord("E")
    assert spell_note(70, 4, "major", e, next_pitch=66)[:2] == ("A", 1)  # E major: outside notes sharp
    assert spell_note(70, 4, "major", e, next_pitch=69)[:2] == ("B", -1)  # but Bb leading down into A


def test_a_line_over_db6_in_b_flat_is_written_as_a_player_reads_it() -> None:
    from engine.music.written import Voice

    # bar 1 over Bbmaj7: C# leads up into D, F# (held over the bar line) goes on to C; bar 2 over Db6: C Gb G Gb
    notes = ((0, 1, 73), (1, 1, 74), (2, 3, 66), (5, 1, 72), (6, 1, 60), (6.5, 0.5, 66), (7, 0.5, 67), (7.5, 0.5, 66))
    w = Written(title="t", style="jazz", tempo=120.0, meter=(4, 4), tonic=10, mode="major", bars=2,
                changes=((0.0, parse_chord("Bbmaj7")), (4.0, parse_chord("Db6"))), voices=(Voice("lead", notes),))
    spelled = [(n.findtext("pitch/step") + {"-1": "b", "1": "#"}.get(n.findtext("pitch/alter") or "0", ""),
                n.find("tie") is not None and n.find("tie").get("type"))
               for n in ET.fromstring(write_musicxml(w)).iter("note") if n.find("pitch") is not None]
    assert spelled == [("C#", False), ("D", False), ("Gb", "start"), ("Gb", "stop"), ("C", False),
                       ("C", False), ("Gb", False), ("G", False), ("Gb", False)]


def test_the_header_carries_style_key_and_tempo_and_shows_them() -> None:
    from engine.media.sheet import engrave

    _, written = clip("jazz", 7)
    xml = write_musicxml(dataclasses.replace(written, tonic=10, mode="major", tempo=196.0))
    credits = {c.findtext("credit-type"): c.findtext("credit-words") for c in ET.fromstring(xml).iter("credit")}
    assert credits == {"title": "Chorus jazz #7", "subtitle": "Jazz, swing \u00b7 B\u266d major \u00b7 \u2669 = 196",
                       "composer": "Chorus"}
    header = re.search(r'class="pgHead.*?</g>', engrave(xml)[0], flags=re.S).group(0)
    assert all(line in header for line in credits.values())  # Verovio sets all three on the page
    _, folk = clip("folk", 7)
    assert "\u2669. = " in ET.fromstring(write_musicxml(folk)).find("credit[2]/credit-words").text  # 6/8: the dotted quarter


def test_rhythm_shows_the_beat_keeps_triplets_and_ties_over_the_bar() -> None:
    notes = [(0, 0.5, 60), (0.5, 2.0, 62), (3, 1.5, 64), (4 + 2 / 3, 1 / 3, 65), (5, 1 / 3, 67), (5 + 1 / 3, 1 / 3, 69)]
    first, second = write_bars(notes, (4, 4), 2)
    assert [(e.start, e.length, e.tie) for e in first if e.note == 1] == [(6, 6, "start"), (12, 12, "continue"), (24, 12, "stop")]
    assert [e.tie for e in first + second if e.note == 2] == ["start", "stop"]  # tied over the bar line
    assert [(e.start, e.length) for e in second if e.note in (3, 4, 5)] == [(8, 4), (12, 4), (16, 4)]  # triplet eighths
