"""Mix figures of composed clips: part balance, the lead's stereo image, swing hold and the ending.

For each clip: every part is cut out of ``clip.mid`` (the tempo track plus that one track) and
rendered alone at one gain with the configured SoundFont; its integrated loudness (EBU R128,
ffmpeg's ``ebur128`` filter) gives the balance lead - comping, lead - bass, lead - drums in LU,
and the bass's loudness above 250 Hz. The lead's render gives its L/R correlation and the loss
summed to mono (dB). From the MIDI: long on-beat eighths in the lead, note length / spacing
(median). From the encoded clip (decoded again): integrated loudness and true peak, and the final
chord's length (from its onset until the level is 20 dB under its level 0.2-0.5 s in) and the steepest drop
over 0.15 s after it.

Usage: python bench/mix.py [--style jazz] [--clips 10] [--seconds 30] [--checkpoint checkpoints/jazz]
"""
from __future__ import annotations

import argparse
import io
import re
import statistics
import subprocess
from pathlib import Path

import mido
import numpy as np


def ebur128(pcm: np.ndarray, rate: int, highpass_hz: float | None = None) -> tuple[float, float, float]:
    """Integrated loudness (LUFS), true peak (dBTP) and loudness range (LRA, LU) of (frames, 2)
    int16 via ffmpeg."""
    filt = (f"highpass=f={highpass_hz}:poles=2," if highpass_hz else "") + "ebur128=peak=true"
    done = subprocess.run(["ffmpeg", "-hide_banner", "-nostats", "-f", "s16le", "-ar", str(rate), "-ac", "2",
                           "-i", "pipe:0", "-af", filt, "-f", "null", "-"],
                          input=pcm.astype("<i2").tobytes(), capture_output=True, check=True)
    text = done.stderr.decode(errors="replace")
    summary = text[text.rfind("Summary:"):]
    i = float(re.search(r"I:\s+(-?[\d.]+|-inf) LUFS", summary).group(1))
    peak = re.search(r"Peak:\s+(-?[\d.]+|-inf) dBFS", summary)
    lra = re.search(r"LRA:\s+(-?[\d.]+) LU", summary)
    return i, float(peak.group(1)) if peak else float("nan"), float(lra.group(1)) if lra else float("nan")


def decode(audio: bytes) -> np.ndarray:
    done = subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-i", "pipe:0", "-f", "s16le",
                           "-ac", "2", "-"], input=audio, capture_output=True, check=True)
    return np.frombuffer(done.stdout, "<i2").reshape(-1, 2)


def solo(midi: bytes, name: str) -> bytes | None:
    """The clip's MIDI with only the tempo track and the track called ``name``."""
    mid = mido.MidiFile(file=io.BytesIO(midi))
    keep = [t for t in mid.tracks[1:] if t.name == name]
    if not keep:
        return None
    out = mido.MidiFile(type=1, ticks_per_beat=mid.ticks_per_beat)
    out.tracks = [mid.tracks[0], *keep]
    buf = io.BytesIO()
    out.save(file=buf)
    return buf.getvalue()


def stereo_image(pcm: np.ndarray) -> tuple[float, float]:
    """L/R correlation and the level lost summed to mono (dB, positive = quieter in mono)."""
    x = pcm.astype(np.float64)
    left, right = x[:, 0], x[:, 1]
    corr = float(np.sum(left * right) / np.sqrt(np.sum(left ** 2) * np.sum(right ** 2) + 1e-12))
    stereo = np.mean((left ** 2 + right ** 2) / 2)
    mono = np.mean(((left + right) / 2) ** 2)
    return corr, float(10 * np.log10(stereo / max(mono, 1e-12)))


def long_eighth_hold(midi: bytes) -> float:
    """Median note length / spacing of lead notes on a beat followed by a note 0.55-0.8 beats later."""
    mid = mido.MidiFile(file=io.BytesIO(midi))
    tpb = mid.ticks_per_beat
    track = next(t for t in mid.tracks if t.name == "Lead")
    now, on, notes = 0, {}, []
    for msg in track:
        now += msg.time
        if msg.type == "note_on" and msg.velocity:
            on[msg.note] = now
        elif msg.type in ("note_off", "note_on") and msg.note in on:
            start = on.pop(msg.note)
            notes.append((start / tpb, (now - start) / tpb))
    notes.sort()
    ratios = []
    for (s, d), (s2, _) in zip(notes, notes[1:], strict=False):
        if abs(s - round(s)) < 0.04 and 0.55 <= s2 - s <= 0.8:
            ratios.append(d / (s2 - s))
    return statistics.median(ratios) if ratios else float("nan")


def final_chord(pcm: np.ndarray, rate: int, onset_s: float) -> tuple[float, float]:
    """Seconds from the final chord's onset until the level is 20 dB under its start, and the
    steepest level drop (dB) over 0.15 s after that onset."""
    hop = rate // 100  # 10 ms frames
    x = pcm.astype(np.float64).mean(axis=1)
    start = int(onset_s * rate)
    frames = x[start: start + (len(x) - start) // hop * hop].reshape(-1, hop)
    level = 10 * np.log10(np.mean(frames ** 2, axis=1) + 1e-9)
    ref = float(np.median(level[20:50]))  # the chord's level once the attack (and crash) has passed
    below = np.nonzero(level < ref - 20)[0]
    held = (below[0] if below.size else len(level)) / 100
    smooth = np.convolve(level, np.ones(5) / 5, mode="same")
    drops = (smooth[:-15] - smooth[15:])[smooth[:-15] > ref - 30]  # while the chord is still sounding
    return held, float(drops.max()) if drops.size else 0.0


def measure_clip(result, renderer, add) -> None:  # noqa: ANN001 - a ComposeResult, a Renderer, a callback
    """Each part rendered alone at one gain (EBU R128), the lead's image and eighths, the clip's
    loudness and its final chord; ``add(figure, value)`` collects them."""
    rate = renderer.sample_rate
    loud, lead_pcm = {}, None
    for name in ("Lead", "Comping", "Bass", "Drums"):
        midi = solo(result.midi, name)
        if midi is None:
            continue
        pcm = renderer.render(midi)
        loud[name], _, lra = ebur128(pcm, rate)
        if name == "Bass":
            add("bass above 250 Hz, LUFS", ebur128(pcm, rate, 250)[0])
        if name == "Lead":
            lead_pcm = pcm
            add("lead loudness range (LRA), LU", lra)
            add("lead above 250 Hz, LUFS", ebur128(pcm, rate, 250)[0])
    for other in ("Comping", "Bass", "Drums"):
        if other in loud:
            add(f"lead - {other.lower()}, LU", loud["Lead"] - loud[other])
    if lead_pcm is not None:
        corr, loss = stereo_image(lead_pcm)
        add("lead L/R correlation", corr)
        add("lead mono loss, dB", loss)
        add("long eighths, length / spacing", long_eighth_hold(result.midi))
    clip = decode(result.audio)
    lufs, tp, lra = ebur128(clip, rate)
    add("clip integrated, LUFS", lufs)
    add("clip true peak, dBTP", tp)
    add("clip loudness range (LRA), LU", lra)
    score = result.score
    held, drop = final_chord(clip, rate, score.bars[-1][0] * 60 / score.tempo)
    add("final chord held, s", held)
    add("steepest drop after it, dB / 0.15 s", drop)
    add("tempo, bpm", score.tempo)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--style", default="jazz")
    ap.add_argument("--clips", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--checkpoint", type=Path, default=None)
    args = ap.parse_args()

    from engine.compose.composer import Composer
    from engine.compose.request import ComposeRequest
    from engine.media.render import get_renderer
    from engine.settings import Settings

    settings = Settings.from_env()
    composer = Composer(settings)
    renderer = get_renderer(settings.soundfont, settings.sample_rate, settings.synth_threads)
    checkpoint = args.checkpoint or Path("checkpoints") / args.style
    rows: dict[str, list[float]] = {}

    def add(key: str, value: float) -> None:
        rows.setdefault(key, []).append(value)

    for i in range(args.clips):
        req = ComposeRequest.build(args.style, f"{args.seconds:g}s", settings, [args.style], seed=2000 + i)
        measure_clip(composer.compose(req, checkpoint=checkpoint), renderer, add)
    print(f"{args.style}: {args.clips} clips of {args.seconds:g} s, SoundFont {settings.soundfont.name}")
    print(f"  {'figure':<38}{'median':>9}{'min':>9}{'max':>9}")
    for key, vals in rows.items():
        vals = [v for v in vals if v == v]
        if vals:
            print(f"  {key:<38}{statistics.median(vals):>9.2f}{min(vals):>9.2f}{max(vals):>9.2f}")
    if "bass above 250 Hz, LUFS" in rows and "lead above 250 Hz, LUFS" in rows:
        gaps = [a - b for a, b in zip(rows["lead above 250 Hz, LUFS"], rows["bass above 250 Hz, LUFS"], strict=True)]
        print(f"  {'lead - bass above 250 Hz, LU':<38}{statistics.median(gaps):>9.2f}{min(gaps):>9.2f}{max(gaps):>9.2f}")


if __name__ == "__main__":
    main()
