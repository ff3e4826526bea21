"""The compose service: from a `ComposeRequest` to a finished clip (audio, MIDI, picture, summary).

The bot and the workers call this and nothing else. A `Composer` keeps checkpoints and the
synthesizer loaded between requests; each call is independent and fully determined by its seed.
`compose` and `compose_many` run on the caller's thread (finishing is `engine.compose.finish`'s, the audio
streamed into ffmpeg as it is ready); a local worker overlaps clips through `engine.compose.pipeline`.
"""
from __future__ import annotations

import logging
import random
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from engine.band.arrange import Arranger
from engine.band.perform import Performance
from engine.band.styles import STYLES, Style, StyleError, get_style
from engine.compose.continuation import plan_continuation
from engine.compose.plan import Plan, Progress
from engine.compose.request import ComposeRequest, RequestError
from engine.compose.result import ComposeResult
from engine.compose.sheet import written_clip
from engine.compose.song import plan_song
from engine.errors import EngineError
from engine.models.checkpoint import Checkpoint, CheckpointError, load_checkpoint, read_meta
from engine.models.conditioning import cond_ids, era_label
from engine.music import grammar as g
from engine.music.chords import PITCH_NAMES, Chord
from engine.music.keys import MIDI_KEYS, estimate_key
from engine.music.leadsheet import LeadSheet, Note
from engine.music.motif import shape_melody
from engine.settings import Settings

log = logging.getLogger(__name__)
MAX_LOADED_CHECKPOINTS = 4  # models a worker keeps in memory (least recently used dropped first)

class Composer:
    """Composes clips. Keeps checkpoints (by content hash) and the synthesizer loaded."""

    def __init__(self, settings: Settings, device: str | None = None, stream_audio: bool = True,
                 preload: bool = False, numpy: bool = False) -> None:
        """Args:
            settings: the engine's settings.
            device: where sampling runs (auto, cpu, cuda, cuda:N); default ``settings.device``.
            stream_audio: stream the PCM into ffmpeg (started while rendering); False encodes the whole
                render at once, the older path, kept as the reference the streamed bytes are tested
                against and for ``bench/compose.py``.
            preload: start loading the SoundFont now, on a background thread (while torch is imported
                and the first clip sampled): a command or worker that will render soon.
            numpy: sample with the models' numpy twins (`engine.models.nplstm`), never importing torch,
                where the device is the CPU anyway (`engine.models.nplstm.cpu_only`): ``chorus compose``
                starts in half the time. Workers keep torch (batches, CUDA).
        """
        if preload:
            from engine.media.render import get_renderer

            get_renderer(settings.soundfont, settings.sample_rate, settings.synth_threads).preload()
        self.settings = settings
        self.device = device or settings.device
        self.stream_audio = stream_audio
        from engine.models.nplstm import cpu_only

        self.numpy = numpy and cpu_only(self.device)
        if not self.numpy:
            import torch

            torch.set_num_threads(settings.torch_threads)
        self._cache: OrderedDict[Path, Checkpoint] = OrderedDict()  # least recently used first

    # -- checkpoints ---------------------------------------------------------------------------

    def styles(self) -> list[str]:
        """Styles with a valid default checkpoint folder (``<checkpoints_dir>/<style>``)."""
        root = self.settings.checkpoints_dir
        out = []
        for d in sorted(root.iterdir()) if root.is_dir() else []:
            try:
                read_meta(d)
                out.append(d.name)
            except CheckpointError:
                continue
        return out

    def checkpoint(self, path: Path) -> Checkpoint:
        """Load (or reuse) a checkpoint; a folder whose content changed is reloaded."""
        path = Path(path).resolve()
        meta = read_meta(path)
        cached = self._cache.get(path)
        if cached is None or cached.content_hash != meta["content_hash"]:
            if self.numpy:
                cached = load_checkpoint(path, numpy=True)
            else:
                from engine.models.sample import pick_device

                cached = load_checkpoint(path, device=pick_device(self.device))
            self._cache[path] = cached
        self._cache.move_to_end(path)
        while len(self._cache) > MAX_LOADED_CHECKPOINTS:  # a worker that served many swaps keeps the recent ones
            self._cache.popitem(last=False)
        return cached

    # -- composing -----------------------------------------------------------------------------

    def compose(self, req: ComposeRequest, checkpoint: Path | None = None, progress: Progress | None = None) -> ComposeResult:
        """Compose one clip.

        Raises:
            EngineError: a bad seed file, a broken checkpoint or a render failure, with a short reason.
        """
        out = next(self.compose_many([(req, checkpoint, progress)]))
        if isinstance(out, EngineError):
            raise out
        return out

    def compose_many(self, jobs: list[tuple[ComposeRequest, Path | None, Progress | None]]
                     ) -> Iterator[ComposeResult | EngineError]:
        """Compose several clips, sampling all that share a checkpoint in one batch.

        Yields, in order, each job's result or the `EngineError` that stopped it (one bad request
        does not stop the others); results come as soon as each clip is rendered.
        """
        for _, plan in self.sampled(jobs):
            if isinstance(plan, EngineError):
                yield plan
                continue
            try:
                yield self._finish(plan)
            except EngineError as exc:
                yield exc

    def sampled(self, jobs: list[tuple[ComposeRequest, Path | None, Progress | None]],
                 step: Callable[[int], None] | None = None) -> Iterator[tuple[int, Plan | EngineError]]:
        """Prepare the jobs and sample them, those sharing a checkpoint in one batch; yields
        (job index, sampled plan or the `EngineError` that stopped it) in job order, each as soon
        as its batch is sampled. ``step`` is called after each sampling step (it may raise to stop).

        Raises:
            EngineError: sampling itself failed (every job of that batch and after is unfinished).
        """
        from engine.models.sample import sample

        plans: list[Plan | EngineError] = []
        for req, checkpoint, progress in jobs:
            try:
                plans.append(self._prepare(req, checkpoint, progress))
            except EngineError as exc:
                plans.append(exc)
        groups: dict[Path, list[Plan]] = {}
        for plan in plans:
            if isinstance(plan, Plan):
                groups.setdefault(plan.ck.path, []).append(plan)
        done: set[int] = set()  # ids of sampled plans
        released = 0
        for group in groups.values():
            t = time.perf_counter()
            tokens = sample(group[0].ck.model, [p.sreq for p in group], progress=step)
            spent = round(time.perf_counter() - t, 4)
            for plan, toks in zip(group, tokens, strict=True):
                plan.tokens, plan.timings["sample"] = toks, spent
                done.add(id(plan))
            while released < len(plans) and (isinstance(plans[released], EngineError) or id(plans[released]) in done):
                yield released, plans[released]
                released += 1
        while released < len(plans):  # only errors are left
            yield released, plans[released]
            released += 1

    def _prepare(self, req: ComposeRequest, checkpoint: Path | None, progress: Progress | None) -> Plan:
        from engine.formats.seed import SeedLimits, read_seed
        from engine.models.sample import SampleRequest

        started = time.perf_counter()
        say = progress or (lambda _stage: None)
        say("composing")
        ck = self.checkpoint(checkpoint or self.settings.checkpoints_dir / req.style)
        style = _style_of(ck)
        defaults = style.sampling
        seed = req.seed if req.seed is not None else secrets.randbelow(2**31)
        rnd = random.Random(seed)
        seed_sheet: LeadSheet | None = None
        if req.seed_midi is not None:
            seed_sheet = read_seed(req.seed_midi, SeedLimits(max_bytes=self.settings.max_seed_bytes))
        meter = seed_sheet.time_signature if seed_sheet else rnd.choice(defaults.meters)
        if meter not in g.METERS:
            raise RequestError(f"the seed's time signature {meter[0]}/{meter[1]} is not supported")
        if req.tempo is not None:
            tempo = float(req.tempo)
        elif seed_sheet is not None:
            tempo = float(min(max(seed_sheet.tempo, self.settings.min_tempo), self.settings.max_tempo))
        else:
            tempo = float(round(rnd.uniform(*defaults.tempo)))
        bar_units = g.bar_units(meter)
        bars_wanted = max(2, round(req.seconds / (bar_units / g.GRID * 60 / tempo)))
        primer_piece, primer = None, ()
        if seed_sheet is not None:
            kept = seed_sheet.measures[-8:]
            while kept and not any(m.notes for m in kept):
                kept = kept[1:]
            if not kept:
                raise RequestError("the seed has no melody notes in its last bars")
            primer_piece = g.quantize(LeadSheet("seed", seed_sheet.tempo, list(kept)))
            primer = tuple(g.encode(primer_piece))
        sampling = ck.meta.get("sampling", {})
        temperature = req.temperature or sampling.get("temperature", defaults.temperature)
        forms = sampling.get("forms") or defaults.forms
        era, player = _era_player(req, ck, sampling, defaults)
        song, given, continued = self._song(req, ck, rnd, seed, meter, seed_sheet, defaults, era)
        if continued is not None:
            given = continued.changes
        elif song is not None:
            given = song.chorus
        changes = None
        if given:
            changes = tuple(tuple((round(i * bar_units / len(bar)), f"CH:{c.token}") for i, c in enumerate(bar))
                            for bar in given)
        ids = dict(zip(("era", "player"), cond_ids(ck.meta, era, player), strict=True))
        sreq = SampleRequest(**{
            "bars": bars_wanted - 1, "meter": meter, "temperature": temperature,
            "top_p": sampling.get("top_p", defaults.top_p), "seed": seed, "changes": changes, "primer": primer,
            "form": None if changes else rnd.choice(forms), "consonant_strong_beats": True,
            "guidance": float(sampling.get("guidance", defaults.guidance)), **ids,
            "prev_pitch": primer_piece.notes[-1].pitch if primer_piece and primer_piece.notes else None,
            **defaults.steering(sampling, conditioned=any(ids.values()), seed=seed)})
        return Plan(req, ck, style, seed, tempo, meter, primer_piece, len(primer), sreq, song, say, started,
                    {"prepare": round(time.perf_counter() - started, 4)}, era=era, player=player, continued=continued)

    def _song(self, req: ComposeRequest, ck: Checkpoint, rnd: random.Random, seed: int, meter: tuple[int, int],
              seed_sheet: LeadSheet | None, defaults: Any, era: str | None):
        """(song plan or None, the changes given as they are, the continuation of a seed or None)."""
        harmony_meta = ck.meta.get("harmony", {})
        forms = tuple(harmony_meta.get("forms", ())) or defaults.song_forms
        if seed_sheet is not None:
            if ck.harmony is None:  # a model without harmony writes its own chords after the seed
                return None, req.changes, None
            continued = plan_continuation(ck.harmony, harmony_meta, rnd, seed, meter, forms, seed_sheet,
                                          given=req.changes, form=req.form, key=req.key_pc, era=era_label(era))
            return continued.song, None, continued
        if ck.harmony is not None or req.changes or req.changes_text:
            song = plan_song(ck.harmony, harmony_meta, rnd, seed, meter, forms, req.changes, req.changes_text,
                             req.form, req.key_pc, era=era_label(era))
            return song, None, None
        return None, req.changes, None

    def _finish(self, plan: Plan) -> ComposeResult:
        """Render and encode one sampled clip (streamed into ffmpeg unless ``stream_audio`` is off)."""
        from engine.compose.finish import encode_stage, render_stage

        return encode_stage(render_stage(self.realise, self.settings, plan, stream=self.stream_audio))

    def realise(self, plan: Plan, req: ComposeRequest):
        """Decode the tokens, shape the melody to the form, add the ending on the tonic, and
        arrange the band; returns (score, key name, changes text, continuation's first bar or
        None, the clip as written for its lead sheet)."""
        tokens, primer_piece, n_primer, meter = plan.tokens, plan.primer_piece, plan.n_primer, plan.meter
        tempo, seed, style, song = plan.tempo, plan.seed, plan.style, plan.song
        defaults = style.sampling
        cont_tokens = tokens[n_primer:]
        prev_pitch = primer_piece.notes[-1].pitch if primer_piece and primer_piece.notes else None
        offset = primer_piece.end if primer_piece else 0
        draft = g.decode(cont_tokens, seed=seed, prange=defaults.pitch_range, prev_pitch=prev_pitch)
        melody = [Note((offset + n.onset) / g.GRID, n.dur / g.GRID, n.pitch) for n in draft.notes]
        changes = [((offset + t) / g.GRID, c) for t, c in draft.changes]
        if primer_piece:
            melody = [Note(n.onset / g.GRID, n.dur / g.GRID, n.pitch, n.velocity) for n in primer_piece.notes] + melody
            changes = [(t / g.GRID, c) for t, c in primer_piece.changes] + changes
        end_units = offset + draft.end
        bar_units = g.bar_units(meter)
        if song is not None and song.sections and not primer_piece:
            melody = shape_melody(melody, song.sections, len(song.chorus), draft.end // bar_units,
                                  bar_units / g.GRID, defaults.melodic_form, seed)
        performance = Performance.from_meta(plan.ck.meta)
        if performance is not None and style.band.swing and defaults.breathe:  # phrases and rests as soloists leave them
            melody = performance.breathe(melody, random.Random(f"{seed}:breath"), start=max(offset, bar_units) / g.GRID,
                                         stop=(end_units - 2 * bar_units) / g.GRID)
        if song is not None and song.fixed_key:
            tonic, mode = song.tonic, song.mode
        else:  # the user's own changes and no key named: estimated from what is played
            tonic, mode = estimate_key(melody, changes, end_units / g.GRID)
        family = defaults.major_tonic if mode == "major" else defaults.minor_tonic
        final = Chord(tonic, family)
        # The ending: one more bar, the tonic chord held under a long tonic note.
        last_pitch = melody[-1].pitch if melody else 67
        target = min((p for p in range(defaults.pitch_range.low, defaults.pitch_range.high + 1) if p % 12 == tonic),
                     key=lambda p: abs(p - last_pitch))
        melody.append(Note(end_units / g.GRID, bar_units / g.GRID * 0.9, target, 80))
        if not changes or changes[-1][1] != final:
            changes.append((end_units / g.GRID, final))
        total_units = end_units + bar_units
        starts = [b for b in range(0, total_units, bar_units)]
        bars = [(s / g.GRID, bar_units / g.GRID) for s in starts]
        key_name = f"{PITCH_NAMES[tonic]} {mode}"
        midi_key = MIDI_KEYS[tonic] + ("m" if mode == "minor" else "")
        arranger = Arranger(style, seed, request=req, performance=performance)
        # a continuation's choruses do not start at its first bar: the drums mark phrases instead
        score = arranger.arrange(melody, changes, bars, tempo, meter, midi_key, title=f"Chorus {req.style} #{seed}",
                                 chorus_bars=len(song.chorus) if song is not None and song.form and not primer_piece
                                 else None)
        changes_text = " | ".join(
            " ".join(c.name for t, c in changes if s <= t * g.GRID < s + bar_units) or "%" for s in starts[:32])
        cont_bar = (offset // bar_units) + 1 if primer_piece else None
        written = written_clip(plan, melody, changes, bars, tonic, mode, score, continued=primer_piece is not None)
        return score, key_name, changes_text, cont_bar, written


def _era_player(req: ComposeRequest, ck: Checkpoint, sampling: dict[str, Any], defaults: Any
                ) -> tuple[str | None, str | None]:
    """The era (request, else the checkpoint's or style's default) and the player of a clip.

    Raises:
        RequestError: an era asked of a checkpoint that is not conditioned on eras.
    """
    eras = (ck.meta.get("conditioning") or {}).get("eras")
    if req.era and not eras:
        raise RequestError(f"style {req.style} has no eras to choose from; leave era out")
    era = req.era or sampling.get("era") or defaults.era or None
    player = sampling.get("player") or defaults.player or None
    return era, player


def _style_of(ck: Checkpoint) -> Style:
    """The registered style a checkpoint was trained for (its meta's ``style``).

    Raises:
        StyleError: the checkpoint's style is missing or not registered.
    """
    try:
        return get_style(ck.style)
    except StyleError as exc:
        raise StyleError(f"checkpoint {ck.name} is for style {ck.style!r}, which is not registered; "
                         f"registered styles: {', '.join(sorted(STYLES))}") from exc
