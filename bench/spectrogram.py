"""One composed clip's spectrogram and loudness: a picture and the figures a mastering engineer reads.

Composes one clip (default jazz, 30 s, seed 2000, the first clip of ``bench/mix.py``), decodes the
encoded file again and prints:

- integrated loudness (LUFS), loudness range (LU) and true peak (dBTP), from ffmpeg's ``ebur128``;
- the short-term loudness (3 s windows) at its quietest and loudest, and in the final chord;
- the share of energy per band (under 250 Hz, 250 Hz-2 kHz, 2-6 kHz, above 6 kHz).

and writes a PNG: the log-magnitude spectrogram (0-8 kHz, log frequency axis), with the
short-term loudness drawn over it and the final chord's onset marked. Drawn with Pillow, which the
engine already uses for the piano roll.

Usage: python bench/spectrogram.py [--style jazz] [--seconds 30] [--seed 2000] [--out FILE.png]
"""
from __future__ import annotations

import argparse
import re
import subprocess
from pathlib import Path

import numpy as np
from mix import decode
from PIL import Image, ImageDraw
from scipy.signal import stft

WIDTH, HEIGHT, MARGIN = 1200, 420, 48
F_LO, F_HI = 40.0, 8000.0
BANDS = ((0, 250), (250, 2000), (2000, 6000), (6000, 1e9))


def loudness(pcm: np.ndarray, rate: int) -> dict[str, object]:
    """Integrated (LUFS), range (LU), true peak (dBTP) and the short-term curve (10 per second)."""
    done = subprocess.run(["ffmpeg", "-hide_banner", "-nostats", "-v", "verbose", "-f", "s16le", "-ar", str(rate), "-ac", "2",
                           "-i", "pipe:0", "-af", "ebur128=peak=true:framelog=verbose", "-f", "null", "-"],
                          input=pcm.astype("<i2").tobytes(), capture_output=True, check=True)
    text = done.stderr.decode(errors="replace")
    summary = text[text.rfind("Summary:"):]
    short = [(float(t), float(s)) for t, s in re.findall(r"t:\s*([\d.]+)\s+TARGET.*?S:\s*(-?[\d.]+|-inf)", text)
             if s != "-inf" and float(s) > -70]  # the first 3 s have no full window yet
    return {"integrated": float(re.search(r"I:\s+(-?[\d.]+) LUFS", summary).group(1)),
            "range": float(re.search(r"LRA:\s+(-?[\d.]+) LU", summary).group(1)),
            "true_peak": float(re.search(r"Peak:\s+(-?[\d.]+|-inf) dBFS", summary).group(1)),
            "short_term": short}


def spectrogram(pcm: np.ndarray, rate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frequencies (Hz), times (s) and power in dB (F, T) of the mono mix."""
    mono = pcm.astype(np.float64).mean(axis=1) / 32768.0
    f, t, z = stft(mono, fs=rate, nperseg=2048, noverlap=2048 - rate // 100)
    return f, t, 20 * np.log10(np.abs(z) + 1e-7)


def band_shares(f: np.ndarray, power_db: np.ndarray) -> list[float]:
    energy = (10 ** (power_db / 10)).sum(axis=1)
    total = energy.sum()
    return [float(energy[(f >= lo) & (f < hi)].sum() / total) for lo, hi in BANDS]


def _colour(v: np.ndarray) -> np.ndarray:
    """0..1 -> RGB (dark blue, purple, orange, pale yellow), (..., 3) uint8."""
    stops = np.array([[8, 8, 32], [90, 20, 120], [220, 90, 40], [252, 240, 170]], dtype=float)
    x = np.clip(v, 0, 1) * (len(stops) - 1)
    i = np.minimum(x.astype(int), len(stops) - 2)
    w = (x - i)[..., None]
    return (stops[i] * (1 - w) + stops[i + 1] * w).astype(np.uint8)


def draw(f: np.ndarray, t: np.ndarray, power_db: np.ndarray, short: list[tuple[float, float]],
         final_s: float, title: str, out: Path) -> None:
    """The spectrogram on a log frequency axis, the short-term loudness in white, the final chord in cyan."""
    w, h = WIDTH - 2 * MARGIN, HEIGHT - 2 * MARGIN
    rows = np.geomspace(F_HI, F_LO, h)  # top row is the highest frequency
    cols = np.linspace(0, t[-1], w)
    fi = np.clip(np.searchsorted(f, rows), 0, len(f) - 1)
    ti = np.clip(np.searchsorted(t, cols), 0, len(t) - 1)
    top = power_db.max()
    img = _colour((power_db[np.ix_(fi, ti)] - (top - 80)) / 80)
    canvas = Image.new("RGB", (WIDTH, HEIGHT), (255, 255, 255))
    canvas.paste(Image.fromarray(img), (MARGIN, MARGIN))
    d = ImageDraw.Draw(canvas)
    d.text((MARGIN, 12), title, fill=(0, 0, 0))
    for hz in (50, 100, 250, 500, 1000, 2000, 4000, 8000):
        y = MARGIN + int(np.interp(np.log(hz), np.log(rows[::-1]), np.arange(h)[::-1]))
        d.text((4, y - 6), f"{hz if hz < 1000 else f'{hz // 1000}k'}", fill=(0, 0, 0))
    for s in range(0, int(t[-1]) + 1, 5):
        x = MARGIN + int(s / t[-1] * w)
        d.text((x - 6, HEIGHT - MARGIN + 6), f"{s}s", fill=(0, 0, 0))
    if short:  # short-term loudness, -40..-6 LUFS over the picture's height
        pts = [(MARGIN + int(ts / t[-1] * w), MARGIN + int((-6 - lu) / 34 * h)) for ts, lu in short if ts <= t[-1]]
        d.line(pts, fill=(255, 255, 255), width=2)
    x = MARGIN + int(final_s / t[-1] * w)
    d.line([(x, MARGIN), (x, MARGIN + h)], fill=(0, 220, 255), width=1)
    out.parent.mkdir(parents=True, exist_ok=True)
    canvas.quantize(64).save(out, optimize=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--style", default="jazz")
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--seed", type=int, default=2000)
    ap.add_argument("--checkpoint", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=Path("spectrogram.png"))
    args = ap.parse_args()

    from engine.compose.composer import Composer
    from engine.compose.request import ComposeRequest
    from engine.settings import Settings

    settings = Settings.from_env()
    req = ComposeRequest.build(args.style, f"{args.seconds:g}s", settings, [args.style], seed=args.seed)
    result = Composer(settings).compose(req, checkpoint=args.checkpoint or Path("checkpoints") / args.style)
    pcm, rate = decode(result.audio), settings.sample_rate
    score = result.score
    final_s = score.bars[-1][0] * 60 / score.tempo
    loud = loudness(pcm, rate)
    f, t, power = spectrogram(pcm, rate)
    short = loud["short_term"]
    body = [s for ts, s in short if 3 <= ts <= final_s]
    tail = [s for ts, s in short if final_s + 1 <= ts <= final_s + 3]
    s = result.summary
    title = (f"{args.style} seed {args.seed}: {s['tempo']:.0f} bpm, {s['key']}, {len(pcm) / rate:.1f} s; "
             f"{loud['integrated']:.1f} LUFS, LRA {loud['range']:.1f} LU, true peak {loud['true_peak']:.1f} dBTP")
    draw(f, t, power, short, final_s, title, args.out)
    print(title)
    print(f"short-term loudness (3 s): {min(body):.1f} to {max(body):.1f} LUFS over the body; "
          f"{np.median(tail):.1f} LUFS 1-3 s into the final chord (onset {final_s:.1f} s)")
    shares = band_shares(f, power)
    print("energy by band: " + ", ".join(f"{name} {v:.1%}" for name, v in
                                         zip(("<250 Hz", "250 Hz-2 kHz", "2-6 kHz", ">6 kHz"), shares, strict=True)))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
