"""The lead's swing ratio against tempo: WJazzD's soloists against Chorus's lead, with the ride.

Corpus: each training solo's median long:short ratio of its eighth pairs, as performed
(``meta.json["performance"]["swing_points"]`` of the jazz checkpoint, from `training.fit.performance`).
Chorus: the median ratio of the eighth pairs (a note on the beat, the next on its "and") in the
lead of clips composed at each tempo, measured from the score as played. The ride's ratio
(`engine.band.perform.swing_ratio`) is drawn for comparison. Prints the medians per tempo and
writes ``bench/figures/swing-vs-tempo.png`` (Pillow; matplotlib is not a dependency).

    python bench/swing.py [--clips 3]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from PIL import Image, ImageDraw, ImageFont  # noqa: E402

from engine.band.perform import Performance, swing_ratio  # noqa: E402
from engine.compose.composer import Composer  # noqa: E402
from engine.compose.request import ComposeRequest  # noqa: E402
from engine.settings import Settings  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TEMPOS = (100, 130, 160, 190, 220, 250, 280)
W, H, LEFT, RIGHT, TOP, BOTTOM = 1200, 700, 90, 30, 60, 70
T_RANGE, R_RANGE = (80.0, 320.0), (0.8, 2.6)


def chorus_ratios(clips: int) -> dict[int, float]:
    """Median eighth-pair ratio of the lead at each tempo (clips composed without audio)."""
    composer = Composer(Settings.from_env(), numpy=True)
    out = {}
    for tempo in TEMPOS:
        jobs = [(ComposeRequest("jazz", 40.0, tempo=float(tempo), seed=500 + i), None, None) for i in range(clips)]
        ratios = []
        for _, plan in composer.sampled(jobs):
            score, *_ = composer.realise(plan, plan.req)
            notes = sorted(score.part("lead").notes, key=lambda n: n.start)
            written = [n.start for n in _written(composer, plan)]
            ratios += _pairs(notes, written)
        out[tempo] = median(ratios) if ratios else float("nan")
    return out


def _written(composer: Composer, plan) -> list:
    """The lead's written notes, from a grid arrangement of the same plan (same seed)."""
    from dataclasses import replace

    score, *_ = composer.realise(plan, replace(plan.req, feel="grid"))
    return sorted(score.part("lead").notes, key=lambda n: n.start)


def _pairs(played: list, written: list[float]) -> list[float]:
    """Long:short ratios of written eighth pairs (x.0 then x.5, the next onset at x+1), as played:
    the pair's two onsets as played, and the next beat of the band (as the corpus's figure is
    measured against the solo's beat track)."""
    out = []
    starts = [n.start for n in played]
    for i in range(len(written) - 2):
        a, b, c = written[i], written[i + 1], written[i + 2]
        if abs(a % 1) < 1e-6 and abs(b - a - 0.5) < 1e-6 and abs(c - a - 1.0) < 1e-6 and i + 2 < len(starts):
            t1, t2, t3 = starts[i], starts[i + 1], c
            if t1 < t2 < t3:
                out.append((t2 - t1) / (t3 - t2))
    return out


def _xy(tempo: float, ratio: float) -> tuple[float, float]:
    x = LEFT + (tempo - T_RANGE[0]) / (T_RANGE[1] - T_RANGE[0]) * (W - LEFT - RIGHT)
    y = H - BOTTOM - (ratio - R_RANGE[0]) / (R_RANGE[1] - R_RANGE[0]) * (H - TOP - BOTTOM)
    return x, y


def draw(points: tuple, chorus: dict[int, float], perf: Performance, path: Path) -> None:
    img = Image.new("RGB", (W, H), (24, 25, 30))
    d = ImageDraw.Draw(img)
    try:
        font = ImageFont.truetype("DejaVuSans.ttf", 20)
    except OSError:
        font = ImageFont.load_default()
    for r in (1.0, 1.5, 2.0, 2.5):
        d.line([_xy(T_RANGE[0], r), _xy(T_RANGE[1], r)], fill=(50, 53, 64))
        d.text((10, _xy(0, r)[1] - 10), f"{r:.1f}", fill=(150, 155, 172), font=font)
    for t in range(100, 321, 50):
        d.text((_xy(t, 0)[0] - 15, H - BOTTOM + 10), f"{t}", fill=(150, 155, 172), font=font)
    for t, r in points:
        x, y = _xy(t, min(r, R_RANGE[1]))
        d.ellipse([x - 3, y - 3, x + 3, y + 3], fill=(120, 170, 255))
    ride = [_xy(t, swing_ratio(t)) for t in range(80, 321, 5)]
    d.line(ride, fill=(150, 155, 172), width=2)
    d.line([_xy(t, perf.swing(t)) for t in range(80, 321, 5)], fill=(64, 196, 156), width=3)
    for t, r in chorus.items():
        x, y = _xy(t, r)
        d.rectangle([x - 7, y - 7, x + 7, y + 7], outline=(255, 190, 40), width=3)
    d.text((LEFT, 15), "Eighth-note swing ratio (long:short) against tempo (bpm)", fill=(238, 240, 245), font=font)
    legend = [((120, 170, 255), "WJazzD soloists (a solo's median)"), ((64, 196, 156), "learned line"),
              ((255, 190, 40), "Chorus lead, measured"), ((150, 155, 172), "the ride (drummer)")]
    for i, (colour, text) in enumerate(legend):
        d.rectangle([W - 420, TOP + 10 + 30 * i, W - 404, TOP + 26 + 30 * i], fill=colour)
        d.text((W - 396, TOP + 6 + 30 * i), text, fill=(238, 240, 245), font=font)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=3, help="clips per tempo")
    args = ap.parse_args()
    meta = json.loads((REPO / "checkpoints" / "jazz" / "meta.json").read_text())
    perf = Performance.from_meta(meta)
    if perf is None:
        sys.exit("the jazz checkpoint has no performance block (chorus train-performance --into checkpoints/jazz)")
    chorus = chorus_ratios(args.clips)
    print("tempo  corpus (solos within 20 bpm, median)  learned  Chorus lead  ride")
    for t in TEMPOS:
        near = [r for tt, r in perf.swing_points if abs(tt - t) <= 20]
        corpus = f"{median(near):.2f} ({len(near)})" if near else "-"
        print(f"{t:5d}  {corpus:>14s}                          {perf.swing(t):.2f}     {chorus[t]:.2f}       "
              f"{swing_ratio(t):.2f}")
    out = REPO / "bench" / "figures" / "swing-vs-tempo.png"
    draw(perf.swing_points, chorus, perf, out)
    print(f"figure: {out}")


if __name__ == "__main__":
    main()
