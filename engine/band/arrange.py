"""Arrangement: a melody over chords becomes a small band, one MIDI track and channel per part.

What the band plays comes from the style's `engine.band.styles.Band`; the arranger never looks at a
style's name. Comping is either ``book`` (voicings moved by the smallest step, a rhythm per bar
from a small book of patterns, every chord change struck) or ``strum`` (steady strummed chords);
the bass either ``walking`` (the root on each chord's first beat, chord tones on strong beats, the
next root approached by a semitone or a scale step) or ``root_fifth`` (root and fifth on the strong
beats). Drums, where the band has them, are a swing kit: ride pattern, pedal hi-hat on 2 and 4,
light kick on 1, ghosted snare comping, a crash (and often a fill before it) at every chorus
boundary. A swinging band plays offbeat eighths late by a ratio that falls with the tempo
(`swing_ratio`); the lead swings a little less than the ride and accents its offbeats. Timing and
velocity are humanised, each part with its own generator seeded from the seed and the part's
name, so leaving one part out leaves the others' notes exactly as they were. The final chord is
held for at least `FINAL_HOLD_S` by every part that plays it, with the sustain pedal down on the
comping, the bass and a plucked lead, so they ring out together on their own decay. The
registered bands are described in `engine.band.styles`.
"""
from __future__ import annotations

import math
import random
from typing import Protocol

from engine.band.perform import SWING_BY_TEMPO, LeadLine, Performance, swing, swing_ratio  # noqa: F401 (re-exported)
from engine.band.score import Part, Score, ScoreNote, chord_at
from engine.band.styles import VOICINGS, Style
from engine.music.chords import Chord, chord_tones, scale_tones
from engine.music.leadsheet import Note


class Asked(Protocol):
    """What the arranger reads of a user's request (`engine.compose.request.ComposeRequest` is one)."""

    @property
    def band(self) -> str | None: ...  # the style's band by name, None for its default
    @property
    def parts(self) -> frozenset[str]: ...  # the parts to play (`PARTS`)
    @property
    def swing(self) -> float | None: ...  # the ride's and comping's swing ratio, None from the tempo
    @property
    def feel(self) -> str | None: ...  # "grid": every part as composed (straight, written lengths)


PARTS = ("lead", "comping", "bass", "drums")
RIDE, PEDAL_HAT, KICK, SNARE, CRASH, HIGH_TOM, LOW_TOM = 51, 44, 36, 38, 49, 50, 45
LEGATO_GAP = 0.5  # beats: a lead note is held over a gap this short to the next note
FINAL_PEDAL_BEATS = 0.25  # the comping's sustain pedal goes down this far into the final chord
FINAL_HOLD_S = 3.0  # seconds the final chord is held at least (then it rings out on its own)
# A lead that sustains by itself (GM strings, brass, reeds, pipes) tapers its final note over this
# long, by expression (CC11), as a player does: cut at full strength it stopped 14 dB in 0.15 s.
FINAL_FADE_S = 1.0
FINAL_FADE_DB = 24.0  # how far the taper goes before the note ends
# Under the final chord the drummer swells a soft mallet roll on the ride for this long (seconds,
# a stroke every ROLL_STEP_S, crescendo), then lets the cymbal ring: the band's held chord keeps
# its body while piano and guitar decay, as a combo holds a fermata.
FINAL_ROLL_S, ROLL_STEP_S = 2.4, 0.09
LEAD_VELOCITY = 84  # the lead's median velocity with the learned dynamics (the balance against the band as before them)
LEAD_SWING = 0.85  # the lead's swing, as a fraction of the ride's (ratio - 1): a little straighter
APPROACH_P = 0.55  # chance the walking bass approaches a chord change by a half or whole step
PUSH_P = 0.3  # chance the comping anticipates the next bar's chord on the "and" of the last beat
FILL_P = 0.7  # chance of a drum fill in the bar before a chorus boundary (the crash always comes)


# Comping rhythms within a 4-beat bar: (onset beat, length beats)
COMP_PATTERNS = [
    [(0.0, 1.5), (1.5, 0.5)],  # Charleston
    [(0.0, 0.5), (1.5, 1.0), (3.0, 0.5)],
    [(1.0, 0.5), (2.5, 1.0)],
    [(0.0, 2.0), (2.5, 0.5), (3.5, 0.5)],
    [(1.5, 0.5), (3.0, 1.0)],
    [(0.0, 0.75), (2.0, 0.75)],
]


def _segments(changes: list[tuple[float, Chord]], end: float) -> list[tuple[float, float, Chord]]:
    """(start, end, chord) for every chord span up to ``end``."""
    out = []
    for i, (t, c) in enumerate(changes):
        stop = changes[i + 1][0] if i + 1 < len(changes) else end
        if stop > t and t < end:
            out.append((t, min(stop, end), c))
    return out


def taper(end: float, beats: float, steps: int = 12) -> list[tuple[float, int, int]]:
    """Expression (CC11) falling evenly in dB by `FINAL_FADE_DB` over the ``beats`` before ``end``
    (FluidSynth, as the SoundFont spec, attenuates by about 40 log10(127 / value) dB)."""
    return [(end - beats + beats * k / steps, 11, max(1, round(127 * 10 ** (-FINAL_FADE_DB * k / steps / 40))))
            for k in range(1, steps + 1)]


class _Player:
    """One part's hands: its own seeded generator for humanised timing, velocity and choices."""

    def __init__(self, seed: int, part: str) -> None:
        self.rng = random.Random(f"{seed}:{part}")

    def human(self, beat: float, spread: float = 0.015) -> float:
        return max(0.0, beat + self.rng.uniform(-spread, spread))

    def vel(self, base: int, spread: int = 8) -> int:
        return max(1, min(127, base + self.rng.randint(-spread, spread)))


class Arranger:
    """Builds the band parts of a clip. Deterministic for a given seed; each part has its own
    generator, so the parts do not depend on one another."""

    def __init__(self, style: Style, seed: int, parts: frozenset[str] = frozenset(PARTS),
                 request: Asked | None = None, performance: Performance | None = None) -> None:
        """``request``: the user's request, whose arrangement options (``parts`` and the like) win
        over the arguments; the arranger reads them here, so a new option needs no plumbing."""
        self.band = style.band_named(request.band if request is not None else None)
        self.seed = seed
        self.parts = request.parts if request is not None else parts
        self.request = request
        self.performance = performance  # the lead's learned feel (`engine.band.perform`), when the style has one
        self.ratio = 2.0  # swing ratio of the ride and the comping; set from the tempo by `arrange`

    def _time(self, beat: float, ratio: float | None = None) -> float:
        return swing(beat, self.ratio if ratio is None else ratio) if self.band.swing else beat

    def _part(self, name: str, program: int, channel: int) -> Part:
        mix = self.band.part_mix(name)
        return Part(name, program, channel, volume=mix.volume, pan=mix.pan, reverb=mix.reverb, chorus=mix.chorus)

    def arrange(self, melody: list[Note], changes: list[tuple[float, Chord]], bars: list[tuple[float, float]],
                tempo: float, meter: tuple[int, int], key: str, title: str = "Chorus",
                ending: bool = True, chorus_bars: int | None = None) -> Score:
        """Arrange a melody (absolute beats) over chord changes into a `Score`.

        Args:
            chorus_bars: bars per chorus of the form, where the drums mark each boundary; None
                picks a 12-, 16- or 8-bar phrase from the number of bars.
        """
        end = bars[-1][0] + bars[-1][1] if bars else 0.0
        asked = self.request.swing if self.request is not None else None
        self.ratio = swing_ratio(tempo) if asked is None else asked
        if self.grid:
            self.ratio = 1.0
        parts: list[Part] = []
        last_bar = bars[-1] if ending and bars else None
        hold = max(last_bar[1], FINAL_HOLD_S * tempo / 60.0) if last_bar else 0.0  # beats
        if self.band.chorale and bars:
            from engine.band.arrange_chorale import chorale_parts

            done = chorale_parts(self.band, self.seed, melody, changes, bars, key, hold, self.parts)
            return Score(tempo=tempo, meter=meter, key=key, bars=done.bars, chords=done.chords, parts=done.parts,
                         title=title, fermatas=done.fermatas)
        if "lead" in self.parts:
            parts.append(self._lead(melody, end, last_bar[0] if last_bar else None, hold, tempo))
        if "comping" in self.parts:
            parts.append(self._comping(changes, bars, last_bar, hold, LeadLine(melody)))
        if "bass" in self.parts:
            parts.append(self._bass(changes, bars, last_bar, hold))
        if "drums" in self.parts and self.band.drums:
            body = len(bars) - (1 if last_bar else 0)
            parts.append(self._drums(bars, last_bar, _boundaries(body, chorus_bars), tempo))
        return Score(tempo=tempo, meter=meter, key=key, bars=bars, chords=changes, parts=parts, title=title)

    def _lead(self, melody: list[Note], end: float, final_beat: float | None, hold: float, tempo: float) -> Part:
        """The melody, offbeat eighths swung a little less than the ride (only where they are
        eighths: a note at x.5 inside a run of sixteenths or triplets stays put), accented on the
        offbeats, short gaps phrased legato, the final note held with the final chord (and tapered,
        for a lead that sustains by itself)."""
        part = self._part("lead", self.band.lead_program, 0)
        player = _Player(self.seed, "lead")
        if self.grid:
            return self._lead_as_written(part, melody, final_beat, hold)
        perf = self.performance if self.band.swing else None
        asked = self.request.swing if self.request is not None else None
        ratio = 1.0 + (self.ratio - 1.0) * LEAD_SWING
        if perf is not None:
            ratio = perf.swing(tempo) if asked is None else asked
        notes = sorted(melody, key=lambda n: n.onset)
        onsets = [n.onset for n in notes]
        if perf is not None and perf.placement and asked is None:
            times = perf.onsets(onsets, tempo, player.rng)
        else:
            times = [self._lead_time(t, onsets, ratio) for t in onsets]
            if perf is not None:  # placed around the beat as soloists place their notes
                times = [max(0.0, t + perf.place(abs(n.onset % 1.0 - 0.5) < 1e-6, player.rng))
                         for t, n in zip(times, notes, strict=True)]
        loud = perf.loudness(notes, player.rng) if perf is not None and perf.vel_arc else None
        for i, n in enumerate(notes):
            start = times[i] if perf is not None else player.human(times[i], 0.01)
            stop = self._lead_stop(notes, onsets, times, i, start, final_beat, hold, ratio, player)
            offbeat = abs(n.onset - math.floor(n.onset) - 0.5) < 1e-6
            base = n.velocity if n.velocity != 90 else (92 if offbeat else 82)
            velocity = player.vel(base, 5) if loud is None or n.velocity != 90 else \
                max(30, min(127, round(LEAD_VELOCITY + loud[i])))
            shortest = 0.05 if perf is None or i + 1 >= len(notes) else min(0.05, 0.9 * (times[i + 1] - start))
            part.notes.append(ScoreNote(start, max(shortest, stop - start - (0.0 if perf else 0.02)), n.pitch, velocity))
        plucked = not 40 <= self.band.lead_program < 80  # GM strings, brass, reeds and pipes sustain by themselves
        if final_beat is not None and any(n.onset >= final_beat - 1e-6 for n in notes):
            if plucked:
                part.pedal_from(final_beat + FINAL_PEDAL_BEATS)  # rings out with the piano, not cut at its release
            else:
                last = part.notes[-1]
                part.controls = taper(last.start + last.duration, min(FINAL_FADE_S * tempo / 60, last.duration * 0.6))
        return part

    @property
    def grid(self) -> bool:
        """Whether the request asks for the notes exactly as composed (``feel`` grid)."""
        return getattr(self.request, "feel", None) == "grid"

    def _lead_as_written(self, part: Part, melody: list[Note], final_beat: float | None, hold: float) -> Part:
        """The lead on the grid: written places and lengths, straight eighths, no humanising (the
        final note still held with the final chord)."""
        for n in sorted(melody, key=lambda n: n.onset):
            length = n.duration
            if final_beat is not None and n.onset >= final_beat - 1e-6:
                length = max(n.duration, final_beat + hold - n.onset)
            part.notes.append(ScoreNote(n.onset, max(0.05, length), n.pitch, n.velocity if n.velocity != 90 else 86))
        return part

    def _lead_stop(self, notes: list[Note], onsets: list[float], times: list[float], i: int, start: float,
                   final_beat: float | None, hold: float, ratio: float, player: _Player) -> float:
        """Where the lead's note ``i`` stops: the final note with the final chord; with a learned
        performance, the length soloists give a note at that spacing (a phrase's last note held);
        else short gaps phrased legato."""
        n = notes[i]
        stop_beat = n.onset + n.duration
        if final_beat is not None and n.onset >= final_beat - 1e-6:
            return final_beat + max(n.onset - final_beat + n.duration, hold)  # as long as the comping's hold
        if i + 1 >= len(notes):
            return self._lead_time(stop_beat, onsets, ratio)
        if self.performance is not None and self.band.swing:
            spacing = max(0.01, times[i + 1] - start)
            phrase_end = onsets[i + 1] - stop_beat > 1.0
            return start + max(0.01, min(self.performance.length(spacing, phrase_end, player.rng), spacing - 0.005))
        if onsets[i + 1] - stop_beat <= LEGATO_GAP:
            return times[i + 1]  # a short gap is phrased legato: lines sing, not tick
        return min(self._lead_time(stop_beat, onsets, ratio), times[i + 1])

    def _lead_time(self, beat: float, onsets: list[float], ratio: float) -> float:
        """Where the lead plays a position: swung at ``ratio`` if it is an offbeat eighth with no
        other onset inside its beat (sixteenth and triplet runs are played as written)."""
        whole = math.floor(beat)
        if any(whole < o < whole + 1 and abs(o - beat) > 1e-6 for o in onsets):
            return beat
        return self._time(beat, ratio)

    def _voicing(self, chord: Chord, previous: list[int] | None, ceiling: int | None = None) -> list[int]:
        """The chord's voicing nearest the previous one, inside the comping's range and, with a
        ``ceiling`` (the lead's lowest pitch while it sounds), under the lead: reaching an octave
        below the range for it if need be. Where no voicing fits under (the lead dips into the
        comping's register), the range alone decides."""
        if ceiling is not None:
            under = self._voicing_in(chord, previous, self.band.comp_range[0] - 12, min(self.band.comp_range[1], ceiling - 1))
            if under is not None:
                return under
        options = self.band.voicings.get(chord.family) or VOICINGS.get(chord.family) or [(0, 4, 7)]
        lo, hi = self.band.comp_range
        return self._voicing_in(chord, previous, lo, hi) or [chord.root + 48 + i for i in options[0]]

    def _voicing_in(self, chord: Chord, previous: list[int] | None, lo: int, hi: int) -> list[int] | None:
        options = self.band.voicings.get(chord.family) or VOICINGS.get(chord.family) or [(0, 4, 7)]
        best, best_cost = None, None
        center = (self.band.comp_range[0] + self.band.comp_range[1]) / 2
        for shape in options:
            for octave in range(2, 7):
                notes = [chord.root + 12 * octave + i for i in shape]
                if min(notes) < lo or max(notes) > hi:
                    continue
                if previous:
                    cost = sum(min(abs(a - b) for b in previous) for a in notes)
                else:
                    cost = abs(sum(notes) / len(notes) - center)
                if best_cost is None or cost < best_cost:
                    best, best_cost = notes, cost
        return best

    def _comping(self, changes: list[tuple[float, Chord]], bars: list[tuple[float, float]],
                 last_bar: tuple[float, float] | None, hold: float, lead: LeadLine) -> Part:
        part = self._part("comping", self.band.comp_program, 1)
        player = _Player(self.seed, "comping")
        previous: list[int] | None = None
        pushed = False  # this bar's downbeat was anticipated at the end of the last one
        for start, length in bars:
            if last_bar and start == last_bar[0]:
                continue
            book = self.band.comping == "book"
            hits = [(b, d, start + b) for b, d in (self._book_hits(changes, start, length, player) if book
                                                   else self._strum_hits(length))]
            if pushed:
                hits = [h for h in hits if h[0] >= 0.6]
            pushed = book and (not last_bar or start + length < last_bar[0]) and player.rng.random() < PUSH_P
            if pushed:  # the push: the next bar's chord on the "and" of this bar's last beat
                push = length - 0.5
                hits = [(b, min(d, push - b), at) for b, d, at in hits if b <= push - 0.5] + [(push, 1.25, start + length)]
            for b, d, at in sorted(hits):
                chord = chord_at(changes, at + 1e-6)
                if chord is None or chord.is_nc:
                    continue
                voicing = self._voicing(chord, previous, lead.lowest(start + b, start + b + d) if book else None)
                previous = voicing
                onset = player.human(self._time(start + b))
                for k, p in enumerate(voicing):
                    part.notes.append(ScoreNote(onset + self.band.strum_beats * k, d, p, player.vel(self.band.comp_velocity)))
        if last_bar:
            chord = chord_at(changes, last_bar[0] + 1e-6)
            if chord and not chord.is_nc:
                ceiling = lead.lowest(last_bar[0], last_bar[0] + hold) if self.band.comping == "book" else None
                for k, p in enumerate(self._voicing(chord, previous, ceiling)):
                    part.notes.append(ScoreNote(last_bar[0] + self.band.strum_beats * k, hold, p, 60))
                # the pedal down just after the final chord (the last one's notes are off by then) and
                # never lifted: the chord rings out on its own decay rather than stopping at its release
                part.pedal_from(last_bar[0] + FINAL_PEDAL_BEATS)
        return part

    @staticmethod
    def _strum_hits(length: float) -> list[tuple[float, float]]:
        """Steady strokes (onset, length in beats): dotted quarters in a compound meter, else quarters."""
        step = 1.5 if length % 1.5 == 0 and length % 2 else 1.0
        return [(k * step, step * 0.9) for k in range(int(length / step))]

    @staticmethod
    def _book_hits(changes: list[tuple[float, Chord]], start: float, length: float,
                   player: _Player) -> list[tuple[float, float]]:
        """A rhythm from the comping book (onset, length in beats), plus a stroke on every chord change."""
        hits = [(b, d) for b, d in player.rng.choice(COMP_PATTERNS) if b < length]
        for t, _ in changes:  # make sure every chord change is struck
            rel = t - start
            if 0 < rel < length and all(abs(b - rel) > 0.6 for b, _ in hits):
                hits.append((rel, 0.75))
        return hits

    def _bass_step(self, length: float) -> float:
        """Beats between bass notes in a bar of ``length`` beats."""
        if self.band.bass == "walking":
            return 1.0
        return 1.5 if length % 1.5 == 0 and length % 2 else 2.0 if length >= 4 else 1.0

    def _bass(self, changes: list[tuple[float, Chord]], bars: list[tuple[float, float]],
              last_bar: tuple[float, float] | None, hold: float) -> Part:
        part = self._part("bass", self.band.bass_program, 2)
        player = _Player(self.seed, "bass")
        lo, hi = 28, 55
        line = [40]  # pitches played so far (a start near E2)
        beats: list[tuple[float, Chord | None, Chord | None, bool]] = []  # beat, chord, next beat's chord, downbeat
        for start, length in bars:
            if last_bar and start == last_bar[0]:
                continue
            step = self._bass_step(length)
            b = 0.0
            while b < length - 1e-6:
                beats.append((start + b, chord_at(changes, start + b + 1e-6),
                              chord_at(changes, start + b + step + 1e-6), b == 0))
                b += step
        for i, (beat, chord, nxt, downbeat) in enumerate(beats):
            if chord is None or chord.is_nc:
                continue
            new_chord = i == 0 or beats[i - 1][1] != chord
            pcs = self._bass_pcs(i, beat, chord, nxt, downbeat, new_chord, player)
            walking_on = self.band.bass == "walking" and not new_chord
            cands = [p for p in range(lo, hi + 1) if p % 12 in pcs]
            costs = [_bass_cost(p, line, walking_on) + player.rng.random() * 0.5 for p in cands]
            pitch = cands[costs.index(min(costs))]
            line.append(pitch)
            part.notes.append(ScoreNote(player.human(beat, 0.008), self.band.bass_beats, pitch,
                                        player.vel(84 if new_chord else 76, 5)))
        if last_bar:
            chord = chord_at(changes, last_bar[0] + 1e-6)
            if chord and not chord.is_nc:
                root = min((p for p in range(lo, hi + 1) if p % 12 == chord.root), key=lambda p: abs(p - line[-1]))
                part.notes.append(ScoreNote(last_bar[0], hold, root, 84))
                part.pedal_from(last_bar[0] + FINAL_PEDAL_BEATS)  # rings out with the piano
        return part

    def _bass_pcs(self, i: int, beat: float, chord: Chord, nxt: Chord | None, downbeat: bool, new_chord: bool,
                  player: _Player) -> list[int]:
        """Pitch classes the bass may play on one of its beats."""
        tones = sorted(chord_tones(chord.root, chord.family))
        if new_chord or self.band.bass == "root_fifth":
            return [chord.root] if new_chord or i % 2 == 0 else [(chord.root + 7) % 12]
        if downbeat:
            return tones  # a chord tone on every bar's first beat
        if nxt is not None and not nxt.is_nc and nxt != chord and player.rng.random() < APPROACH_P:
            return [(nxt.root + 1) % 12, (nxt.root - 1) % 12, (nxt.root + 2) % 12]  # approach: a half or whole step
        if int(beat) % 2 == 0:
            return tones
        return sorted(scale_tones(chord.root, chord.family) | set(tones))

    def _drums(self, bars: list[tuple[float, float]], last_bar: tuple[float, float] | None,
               boundaries: set[int], tempo: float = 120.0) -> Part:
        """Ride, hi-hat on 2 and 4, light kick, ghosted snare; a crash at each chorus boundary
        (bar index in ``boundaries``), often after a fill in the bar before it."""
        part = self._part("drums", 0, 9)
        player = _Player(self.seed, "drums")
        off = self.ratio / (1.0 + self.ratio)  # beats from a beat to its swung offbeat
        note = part.notes.append
        for k, (start, length) in enumerate(bars):
            if last_bar and start == last_bar[0]:
                part.notes += [ScoreNote(start, 2.0, CRASH, 72), ScoreNote(start, 1.0, KICK, 72)]
                step, strokes = ROLL_STEP_S * tempo / 60, round(FINAL_ROLL_S / ROLL_STEP_S)
                part.notes += [ScoreNote(start + i * step, step, RIDE, 48 + 30 * i // strokes) for i in range(strokes)]
                continue
            fill = k + 1 in boundaries and length >= 4 and player.rng.random() < FILL_P
            if k in boundaries:
                note(ScoreNote(player.human(start, 0.006), 2.0, CRASH, player.vel(82, 5)))
                note(ScoreNote(player.human(start, 0.006), 0.3, KICK, player.vel(70, 5)))
            for beat in range(int(length)):
                t = start + beat
                if fill and beat >= length - 2:
                    continue
                note(ScoreNote(player.human(t, 0.008), 0.3, RIDE, player.vel(72 if beat % 2 else 64, 6)))
                if beat % 2 == 1:
                    note(ScoreNote(player.human(t, 0.006), 0.2, PEDAL_HAT, player.vel(70, 5)))
                    note(ScoreNote(player.human(t + off, 0.008), 0.2, RIDE, player.vel(52, 6)))
                if beat == 0 and player.rng.random() < 0.6:
                    note(ScoreNote(player.human(t, 0.006), 0.2, KICK, player.vel(46, 6)))
                if player.rng.random() < 0.22:
                    note(ScoreNote(player.human(t + off, 0.01), 0.15, SNARE, player.vel(38, 8)))
            if fill:
                part.notes += self._fill(start + length - 2, off, player)
        return part

    @staticmethod
    def _fill(at: float, off: float, player: _Player) -> list[ScoreNote]:
        """A two-beat fill from ``at``: snare on the beat and its swung offbeat, then a triplet
        down the toms into the next bar's crash."""
        hits = [(0.0, SNARE, 70), (off, SNARE, 62), (1.0, HIGH_TOM, 74), (1 + 1 / 3, HIGH_TOM, 66), (1 + 2 / 3, LOW_TOM, 78)]
        return [ScoreNote(player.human(at + b, 0.006), 0.2, pitch, player.vel(v, 5)) for b, pitch, v in hits]


def _bass_cost(pitch: int, line: list[int], walking_on: bool) -> float:
    """How awkward ``pitch`` is after the bass ``line`` so far: the leap, the distance from E2, and
    (walking on a held chord) going straight back to the note before a step (a C-D-C zigzag)."""
    step = abs(pitch - line[-1])
    zigzag = 4.0 if walking_on and len(line) > 1 and pitch == line[-2] and step <= 2 else 0.0
    return (step if step > 0 else 3) + abs(pitch - 40) * 0.15 + zigzag


def _boundaries(body_bars: int, chorus_bars: int | None) -> set[int]:
    """Indexes of the bars that start a new chorus (not the first), out of ``body_bars`` bars.

    Without ``chorus_bars``: 12 when the bars make whole 12-bar choruses but not 16-bar ones, 16
    when they make whole 16-bar choruses, else 8-bar phrases.
    """
    if chorus_bars is None:
        if body_bars % 12 == 0 and body_bars % 16:
            chorus_bars = 12
        elif body_bars % 16 == 0:
            chorus_bars = 16
        else:
            chorus_bars = 8
    return set(range(chorus_bars, body_bars, max(1, chorus_bars)))

