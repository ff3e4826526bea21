"""The style registry: everything that makes jazz jazz and folk folk, in one place.

A `Style` holds its band (what the arranger plays: instruments, comping, bass, drums, swing), its
sampling defaults (tempo and pitch range, meters, harmony forms, the final chord's family) and its
training preset (the hyperparameters ``chorus train --preset NAME`` uses). The arranger, the
compose service and training ask the style and never compare style names.

jazz
    lead on jazz guitar (GM 26); piano comping (GM 0) with rootless and shell voicings and a
    rhythm from the comping book; a walking bass (GM 32); swing drums; swung eighths.
metheny
    the jazz band with a clean electric guitar lead (GM 27), 120-190 bpm, the melody model
    conditioned on Pat Metheny and fine-tuned on his pieces.
folk
    lead on recorder (GM 74; FluidR3's flute, GM 73, is a wide stereo sample pair), strummed
    steel guitar triads (GM 25), a root-fifth bass (GM 32), no
    drums, straight time; 4/4, 6/8 or 3/4.
bach
    a four-part chorale: the melody model writes the soprano, `engine.band.voicelead` the alto, tenor
    and bass under it by the rules of `engine.band.chorale`; a church organ (GM 19) on all four voices,
    or a string quartet (violin, viola, cello, contrabass: GM 40-43) with ``--band strings``; no
    drums, straight time, 60-90 bpm, every phrase end held under a fermata.

Adding a style: add a `Style` to `STYLES` below and train its checkpoint (``chorus train --preset
NAME``), whose meta then carries ``"style": NAME``.
"""
from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from engine.errors import EngineError
from engine.music.grammar import PitchRange
from engine.music.motif import MelodicForm

Voicings = Mapping[str, list[tuple[int, ...]]]

# Rootless and shell voicings as intervals above the root (semitones), by chord family. Also the
# fallback for a family a style's own table does not list.
VOICINGS: Voicings = MappingProxyType({
    "maj7": [(4, 7, 11, 14), (11, 14, 16, 19)], "6": [(4, 9, 14), (9, 14, 16)],
    "maj": [(4, 7, 12), (7, 12, 16)], "7": [(4, 9, 10, 14), (10, 14, 16, 21)],
    "7alt": [(4, 10, 13, 15), (10, 15, 16, 20)], "7sus": [(5, 10, 14), (10, 14, 17)],
    "sus": [(5, 7, 12)], "min7": [(3, 7, 10, 14), (10, 14, 15, 19)], "min": [(3, 7, 12), (7, 12, 15)],
    "min6": [(3, 9, 14), (9, 14, 15)], "minmaj7": [(3, 7, 11, 14)], "m7b5": [(3, 6, 10), (10, 15, 18)],
    "dim7": [(3, 6, 9), (6, 9, 15)], "dim": [(3, 6, 12)], "aug": [(4, 8, 12)], "aug7": [(4, 8, 10)],
})
# Pat Metheny's colours (semitones above the root): maj7 as maj7#11 (3, #11, 7, 9 or 7, 9, 3, #11),
# major triads and 6 chords with the added 9th, sus chords in fourths (4, b7, 9 / 4, 9, 5).
METHENY_VOICINGS: Voicings = MappingProxyType({
    "maj7": [(4, 6, 11, 14), (11, 14, 16, 18)], "maj": [(2, 4, 7), (7, 14, 16)], "6": [(4, 9, 14), (2, 4, 9)],
    "7sus": [(5, 10, 14), (10, 14, 17, 19)], "sus": [(5, 7, 14), (5, 10, 14)],
})
# Close triads in root position, strummed (semitones above the root).
TRIADS: Voicings = MappingProxyType({"maj": [(0, 4, 7)], "min": [(0, 3, 7)], "7": [(0, 4, 10)]})

# book: a rhythm from the comping book per bar; strum: steady beats; chorale: alto and tenor voices
COMPING_KINDS = ("book", "strum", "chorale")
BASS_KINDS = ("walking", "root_fifth", "chorale")  # chorale: the bass voice of the four parts


class StyleError(EngineError, LookupError):
    """A style name (asked for, or carried by a checkpoint) is not registered."""


@dataclass(frozen=True)
class PartMix:
    """Where a part sits in the mix, as MIDI controller values (0-127) written at its track's start.

    Attributes:
        volume: CC7; FluidSynth attenuates by about 40 * log10(volume / 127) dB.
        pan: CC10; 0 hard left, 64 centre, 127 hard right.
        reverb: CC91, the send to the synth's one shared reverb.
        chorus: CC93, the send to the synth's chorus (a preset may add its own; see `engine.media.render`).
    """

    volume: int = 100
    pan: int = 64
    reverb: int = 40
    chorus: int = 0

    def __post_init__(self) -> None:
        for name in ("volume", "pan", "reverb", "chorus"):
            value = getattr(self, name)
            if not 0 <= value <= 127:
                raise StyleError(f"mix {name} {value} is outside 0-127")


@dataclass(frozen=True)
class Band:
    """What the arranger plays for a style.

    Attributes:
        lead_program, comp_program, bass_program: General MIDI programs (0-based).
        drums: whether the style has a drum part at all.
        swing: offbeat eighths are swung to the triplet.
        comp_range: lowest and highest MIDI pitch of a comping voicing.
        comping: ``"book"`` (a pattern from the comping book per bar, every chord change struck)
            or ``"strum"`` (steady strokes on each beat, dotted quarters in compound meters).
        voicings: voicing shapes by chord family (intervals above the root); `VOICINGS` fills gaps.
        strum_beats: beats between successive notes of a chord (0: struck together).
        comp_velocity: MIDI velocity of a comping stroke.
        bass: ``"walking"`` (a note per beat, chord tones and approaches to the next root) or
            ``"root_fifth"`` (root and fifth on the strong beats).
        bass_beats: length of a bass note in beats.
        mix: level, pan and sends by part name (``lead``, ``comping``, ``bass``, ``drums``; a
            chorale's ``alto`` and ``tenor``); a part
            not listed gets `PartMix()`. Balanced by ear and by ``bench/mix.py`` (per-part EBU R128
            loudness rendered alone with the shipped SoundFont).
        voice_programs: a chorale's (soprano, alto, tenor, bass) GM programs; None elsewhere.
        fermata_beats: beats added at each fermata of a chorale (the phrase end is held that much longer).
        phrase_bars: bars per phrase of a chorale; each phrase ends under a fermata.
    """

    lead_program: int
    comp_program: int
    bass_program: int
    drums: bool
    swing: bool
    comp_range: tuple[int, int]
    comping: str
    voicings: Voicings
    strum_beats: float
    comp_velocity: int
    bass: str
    bass_beats: float
    mix: Mapping[str, PartMix] = field(default_factory=dict)
    voice_programs: tuple[int, int, int, int] | None = None
    fermata_beats: float = 0.0
    phrase_bars: int = 2

    @property
    def chorale(self) -> bool:
        """Whether the band sings four-part chorales (alto, tenor and bass by the voice-leading search)."""
        return self.comping == "chorale"

    def part_mix(self, part: str) -> PartMix:
        """The mix of ``part`` (`PartMix()` where the band lists none)."""
        return self.mix.get(part) or PartMix()

    def __post_init__(self) -> None:
        if self.comping not in COMPING_KINDS:
            raise StyleError(f"comping {self.comping!r} is not one of {', '.join(COMPING_KINDS)}")
        if self.bass not in BASS_KINDS:
            raise StyleError(f"bass {self.bass!r} is not one of {', '.join(BASS_KINDS)}")
        if (self.comping == "chorale") != (self.bass == "chorale") or (self.comping == "chorale") != (
                self.voice_programs is not None):
            raise StyleError("a chorale band has comping and bass 'chorale' and its four voice_programs")
        if self.phrase_bars < 1 or self.fermata_beats < 0:
            raise StyleError(f"phrase_bars {self.phrase_bars} must be at least 1 and fermata_beats "
                             f"{self.fermata_beats} not negative")


@dataclass(frozen=True)
class Sampling:
    """Sampling defaults of a style; a checkpoint stores `to_meta` and its stored values win.

    Attributes:
        tempo: quarter-note bpm range a tempo is drawn from when the request gives none.
        pitch_range: the melody's preferred and hard MIDI pitch limits.
        meters: time signatures a meter is drawn from (uniformly) when there is no seed file.
        forms: harmony form lengths in bars, drawn uniformly (repeat a value to weight it).
        major_tonic, minor_tonic: chord family of the final chord in a major or minor key.
        temperature, top_p: sampling temperature and nucleus mass.
        song_forms: the song forms (`engine.music.forms`) the harmony model writes, drawn uniformly
            when the request names none (repeat a name to weight it).
        melodic_form: how the melody follows the form (`engine.music.motif`): strains or motifs.
        era: the era (`engine.models.conditioning.ERA_CHOICES`) a request without one gets; "" for the mix.
        player: the performer the melody model is conditioned on (a name in the checkpoint's
            player vocabulary); "" for none.
        guidance: classifier-free guidance of the era and player (`engine.models.sample.SampleRequest`).
        harmony_slots: steps per bar of the style's harmony model (`engine.models.harmony.HarmonyConfig`):
            2 writes a chord per half bar; 4, one per beat (the chorales).
        rhythm_temperature, type_temperature, register, register_sd: how the melody's draws are
            steered (`engine.models.steer`; `engine.models.sample.SampleRequest`). The defaults
            draw as the model writes.
        steered_top_p: the nucleus mass of a steered draw (None: ``top_p``).
        register_spread: (sd of the register's centre, in semitones; sd of its width, relative):
            each clip is drawn its own register, as soloists differ (0, 0: every clip the same).
        breathe: whether the arranger leaves out notes in rests between phrases of the soloists'
            lengths (`engine.band.perform.Performance.breathe`), for a model that does not phrase
            by itself.
    """

    tempo: tuple[float, float]
    pitch_range: PitchRange
    meters: tuple[tuple[int, int], ...]
    forms: tuple[int, ...]
    major_tonic: str
    minor_tonic: str
    temperature: float = 1.0
    top_p: float = 0.95
    song_forms: tuple[str, ...] = ("free",)
    melodic_form: MelodicForm = MelodicForm("none")
    era: str = ""
    player: str = ""
    guidance: float = 1.0
    harmony_slots: int = 2
    rhythm_temperature: float = 1.0
    type_temperature: float = 1.0
    register: float = 0.0
    register_sd: float = 7.0
    steered_top_p: float | None = None
    register_spread: tuple[float, float] = (0.0, 0.0)
    breathe: bool = True

    def steering(self, stored: Mapping[str, Any] | None = None, conditioned: bool = False,
                 seed: int | None = None) -> dict[str, Any]:
        """The `engine.models.sample.SampleRequest` keywords that steer the melody's draws
        (`engine.models.steer`): the style's, or the checkpoint's ``stored`` sampling where it has
        them; with a ``seed``, the clip's own register (``register_spread``). A draw conditioned on
        an era or a player is not steered ({}): the steer takes away much of what sets the eras
        apart (docs/performance.md)."""
        stored = stored or {}
        if conditioned:
            return {}
        out: dict[str, Any] = {k: float(stored.get(k, getattr(self, k)))
                               for k in ("rhythm_temperature", "type_temperature", "register", "register_sd")}
        centre_sd, width_sd = (float(x) for x in stored.get("register_spread", self.register_spread))
        if seed is not None and (centre_sd or width_sd):
            rng = random.Random(f"{seed}:register")
            out["register_centre"] = (self.pitch_range.low + self.pitch_range.high) / 2 + \
                max(-1.5 * centre_sd, min(1.5 * centre_sd, rng.gauss(0.0, centre_sd)))
            out["register_sd"] *= max(0.6, min(1.5, rng.gauss(1.0, width_sd)))
        top_p = stored.get("steered_top_p", self.steered_top_p)
        return {**out, "pitch_range": self.pitch_range, **({"top_p": float(top_p)} if top_p is not None else {})}

    def to_meta(self) -> dict[str, Any]:
        """The ``sampling`` entry of a checkpoint's meta."""
        meta: dict[str, Any] = {"temperature": self.temperature, "top_p": self.top_p, "forms": list(self.forms)}
        if self.era or self.player:
            meta.update(era=self.era, player=self.player)
        if self.guidance != 1.0:
            meta["guidance"] = self.guidance
        return meta


@dataclass(frozen=True)
class Style:
    """A registered style: its band, sampling defaults and training preset.

    ``training`` holds `training.fit.train.TrainConfig` fields (``model`` as `ModelConfig` fields);
    it is plain data so that the engine does not import the training code or torch. ``bands``
    names other bands a request may choose (``--band strings``); ``band`` is the default.
    """

    name: str
    band: Band
    sampling: Sampling
    training: Mapping[str, Any] = field(default_factory=dict)
    bands: Mapping[str, Band] = field(default_factory=dict)

    def band_named(self, name: str | None) -> Band:
        """The band called ``name`` (None: the default).

        Raises:
            StyleError: the style has no such band; the message lists its bands.
        """
        if name is None or name == "default":
            return self.band
        try:
            return self.bands[name]
        except KeyError as exc:
            names = ", ".join(sorted(self.bands)) or "only its own"
            raise StyleError(f"style {self.name} has no band {name!r}; its bands: {names}") from exc


def _frozen(d: dict[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType({k: _frozen(v) if isinstance(v, dict) else v for k, v in d.items()})


# The mixes, from the audience's side: jazz with the guitar a little right of centre, piano left,
# bass centre, drums spread by the kit's own presets; folk with the recorder centre, guitar left.
# Folk's lead is the recorder (GM 74), not the flute (GM 73): FluidR3's flute is a stereo pair
# whose sides differ (L/R correlation 0.45, 1.4 dB lost in mono, whatever its pan, CC91 or CC93);
# the recorder is mono (correlation ~0.9, ~0.2 dB) and ~1 LU quieter, hence CC7 96 (was 90).
# The lead is turned down rather than the band up, since CC7 cannot raise a part above 127.
JAZZ_MIX: Mapping[str, PartMix] = MappingProxyType({
    "lead": PartMix(volume=91, pan=72, reverb=45, chorus=0), "comping": PartMix(volume=108, pan=46, reverb=50),
    "bass": PartMix(volume=88, pan=64, reverb=18), "drums": PartMix(volume=127, pan=64, reverb=40),
})
FOLK_MIX: Mapping[str, PartMix] = MappingProxyType({
    "lead": PartMix(volume=96, pan=64, reverb=50), "comping": PartMix(volume=104, pan=44, reverb=45),
    "bass": PartMix(volume=110, pan=70, reverb=20),
})
# The chorale: one organ, a wide church reverb, the voices a little apart; the quartet seated as
# on stage (violin left, viola and cello centre-right, the bass right).
ORGAN_MIX: Mapping[str, PartMix] = MappingProxyType({
    "lead": PartMix(volume=96, pan=60, reverb=80), "alto": PartMix(volume=88, pan=54, reverb=80),
    "tenor": PartMix(volume=88, pan=74, reverb=80), "bass": PartMix(volume=96, pan=68, reverb=80),
})
STRINGS_MIX: Mapping[str, PartMix] = MappingProxyType({
    "lead": PartMix(volume=100, pan=40, reverb=60), "alto": PartMix(volume=92, pan=58, reverb=60),
    "tenor": PartMix(volume=96, pan=78, reverb=60), "bass": PartMix(volume=100, pan=92, reverb=55),
})
ORGAN = Band(lead_program=19, comp_program=19, bass_program=19, drums=False, swing=False, comp_range=(48, 74),
             comping="chorale", voicings=TRIADS, strum_beats=0.0, comp_velocity=72, bass="chorale", bass_beats=1.0,
             mix=ORGAN_MIX, voice_programs=(19, 19, 19, 19), fermata_beats=1.0, phrase_bars=2)
STRINGS = replace(ORGAN, lead_program=40, comp_program=41, bass_program=43, mix=STRINGS_MIX,
                  voice_programs=(40, 41, 42, 43))

# Sampling defaults chosen on the validation split with chorus eval: forms of 12, 16 and 32 bars
# bring the chord-progression irregularity to the real solos' level; folk is mostly 8-bar strains.
STYLES: Mapping[str, Style] = MappingProxyType({s.name: s for s in (
    Style(
        "jazz",
        band=Band(lead_program=26, comp_program=0, bass_program=32, drums=True, swing=True, comp_range=(50, 72),
                  comping="book", voicings=VOICINGS, strum_beats=0.0, comp_velocity=62,
                  bass="walking", bass_beats=0.95, mix=JAZZ_MIX),
        sampling=Sampling(tempo=(130, 200), pitch_range=PitchRange(55, 84, 43, 96), meters=((4, 4),),
                          forms=(12, 16, 32), major_tonic="maj7", minor_tonic="min6",
                          song_forms=("aaba", "aaba", "blues", "16", "abac"), melodic_form=MelodicForm("motifs"),
                          guidance=3.5,  # with the checkpoint's era bias (training/fit/era_bias.py)
                          # steered as docs/performance.md measures: the line phrases by itself
                          rhythm_temperature=1.1, type_temperature=1.1, register=1.0, register_sd=7.0, steered_top_p=1.0,
                          # WJazzD's training solos, first 48 bars: each solo's mean pitch varies by an sd of
                          # 4.7 semitones, its pitch sd by 1.0 around 5.5 (0.18 of it)
                          register_spread=(4.7, 0.18), breathe=False),
        training=_frozen({"model": {"hidden": 384, "layers": 2, "dropout": 0.25}, "batch_size": 32, "seq_len": 192,
                          "lr": 2e-3, "max_epochs": 40, "patience": 4, "max_minutes": 38.0,
                          "condition": True,
                          # the harmony model's charts: KIND=FOLDER under the corpus folder (training/fit/harmony.py)
                          "harmony": {"charts": ("wjazzd-charts=wjazzd", "midi=deepjazz_metheny"),
                                      "even_meters": True}}),
    ),
    Style(
        "folk",
        band=Band(lead_program=74, comp_program=25, bass_program=32, drums=False, swing=False, comp_range=(52, 72),
                  comping="strum", voicings=TRIADS, strum_beats=0.012, comp_velocity=66,
                  bass="root_fifth", bass_beats=1.3, mix=FOLK_MIX),
        sampling=Sampling(tempo=(90, 130), pitch_range=PitchRange(62, 88, 55, 98), meters=((4, 4), (6, 8), (3, 4)),
                          forms=(8, 8, 16), major_tonic="maj", minor_tonic="min",
                          song_forms=("aabb",), melodic_form=MelodicForm("strains", ending_bars=1)),
        training=_frozen({"model": {"token_dim": 96, "hidden": 256, "layers": 2, "dropout": 0.2}, "batch_size": 32,
                          "seq_len": 192, "lr": 2e-3, "max_epochs": 30, "patience": 4, "max_minutes": 25.0,
                          "harmony": {"charts": ("nottingham=nottingham",)}}),
    ),
    Style(
        "bach",
        band=ORGAN,
        # The soprano's range; minor keys end on the major tonic (the Picardy third, as Bach's do).
        sampling=Sampling(tempo=(60, 90), pitch_range=PitchRange(62, 77, 60, 81),
                          meters=((4, 4), (4, 4), (4, 4), (3, 4)), forms=(16,), major_tonic="maj", minor_tonic="maj",
                          song_forms=("chorale",), harmony_slots=4,
                          # the Stollen sung twice (bar form): the repeated phrase restates the first,
                          # with its own cadence bar
                          melodic_form=MelodicForm("strains", ending_bars=1)),
        # 330 chorales make only ~36k tokens, nine batches a pass: an epoch is 1,024 random windows.
        training=_frozen({"model": {"token_dim": 96, "hidden": 256, "layers": 2, "dropout": 0.3}, "batch_size": 32,
                          "seq_len": 128, "lr": 2e-3, "windows_per_epoch": 1024, "max_epochs": 120, "patience": 5,
                          "max_minutes": 35.0,
                          # the chorales' own keys and phrases (fermatas); music21's corpus when the folder is absent
                          "harmony": {"charts": ("bach=bach",)}}),
        bands=MappingProxyType({"organ": ORGAN, "strings": STRINGS}),
    ),
)})
# Every band name a request may give (`engine.compose.request.ComposeRequest.band`); a style checks its own.
BAND_CHOICES: tuple[str, ...] = tuple(sorted({name for s in STYLES.values() for name in s.bands}))


def _metheny(jazz: Style) -> Style:
    """Pat Metheny: the jazz band with a clean electric guitar lead, his tempos, the melody model
    conditioned on him (player "Pat Metheny", era postbop, as WJazzD labels his solos) and
    fine-tuned on his pieces (``chorus finetune``; see the README)."""
    # GM 28 "Electric Guitar (clean)" (0-based 27); see the README for why. His colours: major
    # sevenths voiced Lydian (maj7#11), suspended chords voiced in fourths.
    band = replace(jazz.band, lead_program=27, voicings=MappingProxyType({**jazz.band.voicings, **METHENY_VOICINGS}))
    # guidance 1: the metheny checkpoint is fine-tuned on the player id and has no era bias
    sampling = replace(jazz.sampling, tempo=(120, 190), era="postbop", player="Pat Metheny", guidance=1.0)
    return Style("metheny", band=band, sampling=sampling,
                 training=_frozen({"finetune": {"base": "jazz", "player": "Pat Metheny", "era": "POSTBOP"}}))


STYLES = MappingProxyType({**STYLES, "metheny": _metheny(STYLES["jazz"])})


def get_style(name: str) -> Style:
    """The registered style called ``name``.

    Raises:
        StyleError: no such style; the message lists the registered ones.
    """
    try:
        return STYLES[name]
    except KeyError as exc:
        raise StyleError(f"style {name!r} is not registered; registered styles: {', '.join(sorted(STYLES))}") from exc
