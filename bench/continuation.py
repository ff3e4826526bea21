"""Continuations of real solos, scored as METRICS.md's harmony and form (issue: continue the tune).

Takes held-out WJazzD solos (the shipped jazz checkpoint's validation recordings first, then other
4/4 solos it did not train on), continues each with ``chorus compose jazz 60s --tempo 160
--seed-midi FILE --seed N --json`` and scores the 32 bars from ``continuation_starts_bar`` on: the
chord bigram (nats per chord, against the reference charts), ii–V and V–I per 8 bars, key changes
per 32 bars, key fit, rep5, and how often the continuation keeps the seed's key (its file's key
signature, else estimated): ``same_key``, the key the clip was composed in (its summary's, which
its MIDI declares); ``same_key_heard``, the key estimated from the 32 new bars' chords and melody
alone, counted as kept when it is the seed's key or its relative (one key collection, as
METRICS.md's key changes count them).

``--repo DIR`` runs another checkout's ``chorus`` (an older commit, for the "before" figures);
the scoring is always this checkout's.

    python bench/continuation.py [--solos 24] [--repo DIR]
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from engine.compose.continuation import seed_bars, seed_key  # noqa: E402
from engine.formats.midiread import read_midi  # noqa: E402
from engine.formats.seed import read_seed  # noqa: E402
from engine.music.chords import PITCH_NAMES  # noqa: E402
from engine.music.keys import estimate_key  # noqa: E402
from engine.music.leadsheet import Note  # noqa: E402
from engine.settings import Settings  # noqa: E402
from training.evaluation.harmony_metrics import harmony_report, reference_bigram  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TARGETS = {"bigram_ll": ">= -3.1", "ii_v": ">= 1.0", "v_i": ">= 1.0", "key_changes": "<= 7", "key_fit": ">= 0.72",
           "same_key": ">= 0.80"}


def held_out_solos(corpus: Path, n: int) -> list[Path]:
    """The checkpoint's validation solos, then other 4/4 solos it never trained on, as MIDI files."""
    meta = json.loads((REPO / "checkpoints" / "jazz" / "meta.json").read_text())["corpus"]
    seen = set(meta["train_recordings"])
    valid = [r.split(":", 1)[1] for r in meta["valid_recordings"] if r.startswith("wjazzd:")]
    rows = {row["melid"]: row for row in csv.DictReader((corpus / "wjazzd" / "index.csv").open())}
    others = [m for m, row in rows.items() if f"wjazzd:{m}" not in seen and m not in valid and row["signature"] == "4/4"]
    chosen = [m for m in valid + sorted(others, key=int) if m in rows and rows[m]["midi"]][:n]
    return [corpus / "wjazzd" / rows[m]["midi"] for m in chosen]


def continue_one(repo: Path, midi: Path, seed: int, out: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(repo), "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([sys.executable, "-m", "bot.cli", "compose", "jazz", "60s", "--tempo", "160", "--seed-midi",
                           str(midi), "--seed", str(seed), "--json", "--out", str(out)], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"{midi.name}: {done.stderr.strip()}")
    return json.loads(done.stdout)


def score(summary: dict) -> tuple[list, list[tuple[float, int]], tuple[int, str]]:
    """The continuation's 32 bars of changes (from the clip's chord markers), its lead notes and
    their key, estimated from those chords and notes."""
    sheet = read_midi(Path(summary["midi"]).read_bytes())
    start = summary["continuation_starts_bar"] - 1
    bars = list(seed_bars(sheet))[start:start + 32]
    lead, t = [], 0.0
    melody, changes = [], []
    for m in sheet.measures[start:start + 32]:
        lead += [(t + n.onset, n.pitch) for n in m.notes]
        melody += [Note(t + n.onset, n.duration, n.pitch) for n in m.notes]
        changes += [(t + span.onset, span.chord) for span in m.chords]
        t += m.beats
    return bars, lead, estimate_key(melody, changes, t)


def _collection(key: tuple[int, str]) -> int:
    """A key's collection: its major key's tonic (a minor key is its relative major's)."""
    return key[0] if key[1] == "major" else (key[0] + 3) % 12


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--solos", type=int, default=24)
    ap.add_argument("--repo", type=Path, default=REPO, help="the checkout whose chorus composes (default: this one)")
    args = ap.parse_args()
    corpus = Settings.from_env().corpus_dir
    bigram = reference_bigram(corpus)
    pieces, leads, same, heard = [], [], 0, 0
    solos = held_out_solos(corpus, args.solos)
    with tempfile.TemporaryDirectory() as tmp:
        for i, midi in enumerate(solos):
            summary = continue_one(args.repo.resolve(), midi, 1000 + i, Path(tmp) / str(i))
            bars, lead, key = score(summary)
            pieces.append(bars)
            leads.append(lead)
            seed = seed_key(read_seed(midi.read_bytes()))
            same += summary["key"] == f"{PITCH_NAMES[seed[0]]} {seed[1]}"
            heard += _collection(key) == _collection(seed)
            print(f"  {midi.name}: {summary['key']}, {summary.get('form')}, starts at bar "
                  f"{summary['continuation_starts_bar']}", flush=True)
    report = harmony_report(pieces, leads, bigram)
    report["same_key"] = same / max(1, len(solos))
    report["same_key_heard"] = heard / max(1, len(solos))
    print(f"continuations of {len(solos)} held-out solos ({args.repo.resolve()}):")
    for k in ("bigram_ll", "ii_v", "v_i", "key_changes", "key_fit", "rep5", "same_key", "same_key_heard"):
        print(f"  {k:12s} {report[k]:8.3f}   target {TARGETS.get(k, '-')}")


if __name__ == "__main__":
    main()
