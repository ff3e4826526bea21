from __future__ import annotations

import csv
from pathlib import Path

import pytest

from engine.errors import MidiReadError
from engine.formats.midiread import read_midi, read_midi_file
from engine.music import grammar as g
from tests.helpers import (
    COMP_LABELS,
    FIXTURES,
    combo_midi,
    corpus_dir,
    midi_bytes,
    tune_melody,
    write_wjazzd,
)
from training.corpus import Source, read_sources
from training.corpus.base import CorpusError
from training.fit.dataset import Dataset, build, split_of


def test_wjazzd_fixture_reads_notes_and_chords(tmp_path: Path) -> None:
    report = read_sources([Source.parse(f"wjazzd={write_wjazzd(tmp_path)}")])
    assert len(report.sheets) == 2 and not report.skipped
    sheet = report.sheets[0]
    assert len(sheet.measures) == 4
    assert sheet.chord_labels(4) == ["Dm7 G7", "Cmaj7", "Am7 D7(b9)", "G7alt"]
    first = sheet.measures[0].notes[:3]
    assert [(n.onset, n.pitch) for n in first] == [(0.0, 62), (0.5, 65), (1.0, 69)]
    assert first[0].duration == pytest.approx(0.45)
    assert sheet.recording == "wjazzd:1"


def test_wjazzd_missing_column_and_unknown_chord_are_skipped_with_reasons(tmp_path: Path) -> None:
    root = write_wjazzd(tmp_path, solos=3)
    broken = root / "csv_melody" / "Tester_Tune1_Solo.csv"
    rows = list(csv.reader(broken.open()))
    with broken.open("w", newline="") as fh:
        csv.writer(fh).writerows([r[:-1] for r in rows])  # drop the "tatum" column
    beats = root / "csv_beats" / "Tester_Tune2_Solo.csv"
    beats.write_text(beats.read_text().replace("G7alt", "Gfoo"))
    report = read_sources([Source.parse(f"wjazzd={root}")])
    assert len(report.sheets) == 1
    reasons = {Path(s.path).name: s.reason for s in report.skipped}
    assert "missing column(s) tatum" in reasons["Tester_Tune1_Solo.csv"]
    assert "'Gfoo'" in reasons["Tester_Tune2_Solo.csv"]


def test_bad_source_specs_are_refused(tmp_path: Path) -> None:
    for spec, msg in [("wjazzd", "KIND=PATH"), ("abc=x", "unknown corpus kind"), (f"midi={tmp_path}/none", "not found")]:
        with pytest.raises(CorpusError, match=msg):
            Source.parse(spec)


@pytest.mark.parametrize("file_type", [0, 1])
def test_midi_reader_finds_melody_and_infers_chords(file_type: int) -> None:
    sheet = read_midi(combo_midi(file_type=file_type))
    assert sheet.chord_labels(4) == COMP_LABELS
    assert sheet.meta["melody_channel"] == "2"
    assert [n.pitch for n in sheet.measures[0].notes] == [p for o, d, p in tune_melody() if o < 4]
    assert sheet.tempo == 120.0


def test_midi_without_accompaniment_or_meter_infers_from_melody() -> None:
    arpeggios = [(i * 0.5, 0.5, p) for i, p in enumerate([60, 64, 67, 72, 67, 64, 60, 64] + [62, 65, 69, 74, 69, 65, 62, 65])]
    data = midi_bytes([{"name": "", "channel": 0, "notes": arpeggios}], meter=None, tempo_bpm=90)
    sheet = read_midi(data)
    assert sheet.time_signature == (4, 4)
    assert sheet.tempo == 90.0
    labels = " ".join(sheet.chord_labels(2)).split()
    assert labels[0] == "C" and labels[-1] == "Dm"


def test_midi_melody_track_holding_chords_is_reduced_to_the_top_voice() -> None:
    doubles = [(0, 1, 60), (0, 1, 67), (1, 1, 62), (1, 1, 69), (2, 2, 64)]
    sheet = read_midi(midi_bytes([{"name": "Guitar", "channel": 5, "notes": doubles},
                                  {"name": "Piano", "channel": 0, "notes": [(0, 4, 48), (0, 4, 52), (0, 4, 55)]}]))
    assert [n.pitch for n in sheet.measures[0].notes] == [67, 69, 64]
    assert sheet.meta["melody_track"] == "Guitar"


@pytest.mark.parametrize("data, reason", [
    (b"", "not a MIDI file"),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "not a MIDI file"),
    (None, "damaged or truncated"),
    (midi_bytes([{"name": "Drums", "channel": 9, "notes": [(0, 1, 36)]}]), "only drums"),
    (midi_bytes([]), "no melody notes"),
])
def test_bad_midi_gets_a_short_reason(data: bytes | None, reason: str) -> None:
    if data is None:
        data = combo_midi()[:100]
    with pytest.raises(MidiReadError, match=reason):
        read_midi(data)


def test_midi_corpus_skips_a_truncated_file(tmp_path: Path) -> None:
    (tmp_path / "good.mid").write_bytes(combo_midi())
    (tmp_path / "bad.mid").write_bytes(combo_midi()[:90])
    report = read_sources([Source.parse(f"midi={tmp_path}")])
    assert len(report.sheets) == 1
    assert report.skipped[0].path.endswith("bad.mid") and "truncated" in report.skipped[0].reason


def test_dataset_split_keeps_recordings_together(tmp_path: Path) -> None:
    report = read_sources([Source.parse(f"wjazzd={write_wjazzd(tmp_path / 'w', solos=6)}"),
                           Source.parse(f"midi={FIXTURES / 'midi'}")])
    ds, left_out = build(report.sheets, ["fixture"], valid_fraction=0.5)
    assert not left_out
    for piece in ds.pieces:
        assert piece.split == split_of(piece.recording, 0.5)
        assert g.VOCAB[piece.tokens[0]] == "BOS" and g.VOCAB[piece.tokens[-1]] == "EOS"
    path = tmp_path / "ds.json.gz"
    ds.save(path)
    again = Dataset.load(path)
    assert again.fingerprint == ds.fingerprint and len(again.pieces) == 7


# -- the real corpora -------------------------------------------------------------------------


@pytest.mark.corpus
def test_real_wjazzd_reads_all_404_and_round_trips() -> None:
    report = read_sources([Source.parse(f"wjazzd={corpus_dir() / 'wjazzd'}")])
    assert len(report.sheets) == 404, report.skipped
    total = kept = 0
    for sheet in report.sheets:
        piece = g.quantize(sheet)
        toks = g.encode(piece)
        out = g.decode(toks, seed=7)
        before = [(n.onset, n.dur, n.ntype) for n in piece.notes]
        after = {(n.onset, n.dur, n.ntype) for n in out.notes}
        total += sheet.note_count
        kept += sum(1 for n in before if n in after)
        assert g.grammar_errors(toks) == 0.0
    assert kept / total >= 0.99


@pytest.mark.corpus
def test_real_metheny_melody_is_the_guitar_and_chords_are_inferred() -> None:
    sheet = read_midi_file(corpus_dir() / "deepjazz_metheny" / "original_metheny.mid")
    assert sheet.meta["melody_track"] == "Guitar"
    assert sheet.tempo == 112.0 and len(sheet.measures) == 217
    labels = [c for bar in sheet.chord_labels(217) for c in bar.split()]
    assert len(set(labels)) >= 8  # real harmony, not one chord held throughout


@pytest.mark.corpus
def test_real_nottingham_tunes_read_with_their_chord_track() -> None:
    root = corpus_dir() / "nottingham" / "MIDI"
    files = sorted(root.glob("*.mid"))[:40]
    report = read_sources([Source.parse(f"midi={f}") for f in files[:1]] +
                          [Source.parse(f"nottingham={f}") for f in files])
    assert len(report.sheets) == 41
    sheet = report.sheets[1]
    assert sheet.chord_labels(3)[1] != "NC"
