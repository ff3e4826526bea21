"""How long a clip's lead sheet takes, and Verovio against LilyPond on the same MusicXML.

Composes 30 s clips with the shipped checkpoints (feel grid: the notes as written), then times,
over several runs each (medians printed): the MusicXML (music21), Verovio's SVG pages, the PNG
(cairosvg), the whole `make_sheet`, and, when LilyPond is installed, musicxml2ly + lilypond to PNG
and PDF (a process per sheet, as it runs). Writes the jazz sheet to bench/figures/lead-sheet-jazz.png.

    .venv/bin/python bench/sheet.py [--runs 7] [--seed 7]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

FIGURE = Path(__file__).parent / "figures" / "lead-sheet-jazz.png"


def median_s(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def lilypond(xml: bytes, runs: int) -> str:
    if not (shutil.which("lilypond") and shutil.which("musicxml2ly")):
        return "LilyPond: not installed (apt-get install lilypond)"
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "clip.musicxml"
        src.write_bytes(xml)

        def run() -> None:
            subprocess.run(["musicxml2ly", "-o", "clip.ly", "clip.musicxml"], cwd=tmp, check=True, capture_output=True)
            subprocess.run(["lilypond", "--png", "--pdf", "-dresolution=150", "clip.ly"], cwd=tmp, check=True,
                           capture_output=True)

        total = median_s(run, runs)
    return f"LilyPond (musicxml2ly + lilypond, PNG and PDF): median {total:.2f} s"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()
    from engine.compose.composer import Composer
    from engine.compose.request import ComposeRequest
    from engine.compose.sheet import make_sheet
    from engine.formats.musicxml import write_musicxml
    from engine.media.sheet import engrave, to_pdf, to_png
    from engine.music.written import Written
    from engine.settings import Settings

    settings = Settings.from_env()
    composer = Composer(settings, numpy=True, stream_audio=False)
    t = time.perf_counter()
    import music21  # noqa: F401  (the first sheet in a worker pays this once)
    print(f"import music21: {time.perf_counter() - t:.2f} s (once per worker)")
    for style in ("jazz", "folk", "bach"):
        req = ComposeRequest.build(style, "30s", settings, [style], seed=args.seed, feel="grid", audio_format="flac")
        written = Written.from_json(composer.compose(req).written)
        xml = write_musicxml(written)
        pages = engrave(xml)
        print(f"{style}: {written.bars} bars of {written.meter[0]}/{written.meter[1]}, {len(pages)} page(s), "
              f"MusicXML {len(xml) / 1024:.0f} KiB, PNG {len(to_png(pages)) / 1024:.0f} KiB")
        print(f"  musicxml (music21)       median {median_s(lambda w=written: write_musicxml(w), args.runs):.3f} s")
        print(f"  Verovio SVG              median {median_s(lambda x=xml: engrave(x), args.runs):.3f} s")
        print(f"  PNG (cairosvg)           median {median_s(lambda p=pages: to_png(p), args.runs):.3f} s")
        print(f"  PDF (cairosvg)           median {median_s(lambda p=pages: to_pdf(p), args.runs):.3f} s")
        print(f"  the Sheet button's work  median {median_s(lambda w=written: make_sheet(w), args.runs):.3f} s "
              "(MusicXML, SVG, PNG)")
        if style == "jazz":
            FIGURE.write_bytes(make_sheet(written).png)
            print(f"  {lilypond(xml, max(1, args.runs // 2))}")
    print(f"wrote {FIGURE}")


if __name__ == "__main__":
    main()
