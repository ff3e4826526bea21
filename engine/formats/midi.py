"""Write a `Score` as a type 1 MIDI file with mido: named tracks, tempo, meter, key and the chords as markers."""
from __future__ import annotations

import io

import mido

from engine.band.score import Score

TICKS_PER_BEAT = 480
PART_TITLES = {"lead": "Lead", "comping": "Comping", "bass": "Bass", "drums": "Drums"}


def write_midi(score: Score) -> bytes:
    """The score as MIDI bytes (deterministic for the same score)."""
    mid = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    meta = mido.MidiTrack()
    meta.append(mido.MetaMessage("track_name", name=score.title[:60], time=0))
    meta.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(score.tempo), time=0))
    num, den = score.meter
    meta.append(mido.MetaMessage("time_signature", numerator=num, denominator=den, time=0))
    try:
        meta.append(mido.MetaMessage("key_signature", key=score.key or "C", time=0))
    except (ValueError, KeyError):
        meta.append(mido.MetaMessage("key_signature", key="C", time=0))
    now = 0
    for beat, chord in score.chords:  # the changes as markers: the whole text, however long
        tick = max(now, round(beat * TICKS_PER_BEAT))
        meta.append(mido.MetaMessage("marker", text=chord.name, time=tick - now))
        now = tick
    end_tick = round(score.beats * TICKS_PER_BEAT)
    meta.append(mido.MetaMessage("end_of_track", time=max(0, end_tick - now)))
    mid.tracks.append(meta)
    for part in score.parts:
        track = mido.MidiTrack()
        track.append(mido.MetaMessage("track_name", name=PART_TITLES.get(part.name, part.name), time=0))
        if not part.is_drums:
            track.append(mido.Message("program_change", program=part.program, channel=part.channel, time=0))
        for control, value in ((7, part.volume), (10, part.pan), (91, part.reverb), (93, part.chorus)):
            track.append(mido.Message("control_change", control=control, value=value, channel=part.channel, time=0))
        events = []
        for n in part.notes:
            on = max(0, round(n.start * TICKS_PER_BEAT))
            off = max(on + 1, round((n.start + n.duration) * TICKS_PER_BEAT))
            events.append((on, 1, n.pitch, n.velocity))
            events.append((off, 0, n.pitch, 0))
        # (tick, 2, number, value): controller changes (the pedal, a fade), after the notes at that tick
        events.extend((max(0, round(beat * TICKS_PER_BEAT)), 2, number, value) for beat, number, value in part.controls)
        events.sort(key=lambda e: (e[0], e[1], e[2]))  # note-offs before note-ons at the same tick
        now = 0
        for tick, kind_id, number, value in events:
            if kind_id == 2:
                msg = mido.Message("control_change", control=number, value=value, channel=part.channel, time=tick - now)
            else:
                msg = mido.Message("note_on" if kind_id else "note_off", note=number, velocity=value,
                                   channel=part.channel, time=tick - now)
            track.append(msg)
            now = tick
        mid.tracks.append(track)
    buf = io.BytesIO()
    mid.save(file=buf)
    return buf.getvalue()
