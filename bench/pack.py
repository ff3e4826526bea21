"""How far a packed (float16) checkpoint's clips are from the float32 one's, seed by seed.

Usage: python bench/pack.py [--checkpoint checkpoints/jazz] [--seeds 1-10] [--length 30s]
Prints the archive's size, then per seed whether the MIDI is identical and, when not, the share
of notes (onset, channel, pitch) the two clips have in common and the note where they first part.
"""
from __future__ import annotations

import argparse
import io
import sys
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def notes(midi: bytes) -> list[tuple[int, int, int]]:
    import mido

    out = []
    f = mido.MidiFile(file=io.BytesIO(midi))
    for track in f.tracks:
        now = 0
        for msg in track:
            now += msg.time
            if msg.type == "note_on" and msg.velocity:
                out.append((now, msg.channel, msg.note))
    return sorted(out)


def main() -> int:
    from engine.compose.composer import Composer
    from engine.compose.request import ComposeRequest
    from engine.formats.pack import pack
    from engine.settings import Settings

    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", type=Path, default=Path("checkpoints/jazz"))
    ap.add_argument("--seeds", default="1-10", help="first-last")
    ap.add_argument("--length", default="30s")
    args = ap.parse_args()
    lo, hi = (int(x) for x in args.seeds.split("-"))
    settings = Settings.from_env()
    composer = Composer(settings)
    with tempfile.TemporaryDirectory() as tmp:
        done = pack(args.checkpoint, Path(tmp) / "ck.zip")
        print(f"archive {done.archive_bytes:,} bytes ({done.archive_bytes / 2**20:.2f} MiB); weights "
              f"{done.original_weights_bytes:,} -> {done.weights_bytes:,} bytes")
        with zipfile.ZipFile(done.path) as zf:
            zf.extractall(tmp)
        half = Path(tmp) / args.checkpoint.name
        style = str(composer.checkpoint(args.checkpoint).style)
        same = 0
        for seed in range(lo, hi + 1):
            req = ComposeRequest.build(style, args.length, settings, [style], seed=seed)
            a = composer.compose(req, checkpoint=args.checkpoint)
            b = composer.compose(req, checkpoint=half)
            if a.midi == b.midi:
                same += 1
                print(f"seed {seed}: identical MIDI")
                continue
            na, nb = notes(a.midi), notes(b.midi)
            common = len(set(na) & set(nb)) / max(1, len(na))
            first = next((i for i, (x, y) in enumerate(zip(na, nb, strict=False)) if x != y), min(len(na), len(nb)))
            print(f"seed {seed}: different; {common:.0%} of notes in common, first differs at note {first} of {len(na)}")
        print(f"{same} of {hi - lo + 1} seeds identical")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
