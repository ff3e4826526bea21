"""Stateless, seeded, batched sampling of grammar tokens from a `ChorusLSTM`.

Every parameter comes with the call; a request's seed (its own `engine.models.seeded.Uniform`, the
numbers a torch generator of that seed gives) fully determines its tokens, whether it is sampled
alone or in a batch with others, by the torch network or by its numpy twin (`engine.models.nplstm`). Constrained
decoding: given chord changes are forced at their places, a primer (a seed's own measures) is
forced first and the model continues from there, and the grammar's mask keeps every sequence
well formed.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.errors import EngineError
from engine.models.seeded import Uniform
from engine.models.steer import IS_NOTE, Register, temper
from engine.music import grammar as g
from engine.music import state as st
from engine.music.chords import Chord

if TYPE_CHECKING:  # the torch network; a numpy one (engine.models.nplstm) samples without importing torch
    import torch

_NC_ID = g.TOKEN_ID["CH:NC"]
_DISSONANT = np.array([t.kind == "note" and t.ntype in ("A", "X") for t in st.TOKENS])
BarChanges = tuple[tuple[int, str], ...]  # (offset in grid units, chord token name such as "CH:Dm7")


@dataclass(frozen=True)
class SampleRequest:
    """One sequence to sample.

    Attributes:
        bars: bars to write after the primer.
        meter: time signature of the new bars.
        temperature: softmax temperature (> 0).
        top_p: nucleus sampling threshold (0 < top_p <= 1).
        seed: the seed of this request's generator.
        changes: per new bar, the chord changes to force; None lets the model write the harmony.
            The list is looped when shorter than ``bars``.
        primer: tokens forced first (a seed's measures), without BOS.
        form: with no ``changes``, the model writes the harmony of the first ``form`` bars and
            the later bars repeat it, chorus after chorus, as a soloist plays over a tune's form.
        consonant_strong_beats: notes struck on a strong beat (beat 1, and the middle of an even
            bar) must be chord or scale tones (no approach or other tones there).
        chord_temperature: the temperature for chord-change tokens (None: ``temperature``); lower
            keeps the model to the progressions it knows best.
        allow_no_chord: with free harmony, whether the model may write "no chord" (NC) spans.
        era, player: the conditioned model's era and player ids (`engine.models.conditioning.cond_ids`);
            0 is the unconditioned average, and a model without conditioning ignores them.
        guidance: with an era or player, the logits are ``uncond + guidance * (cond - uncond)``
            (classifier-free guidance: above 1 the era is played more markedly; it costs a second
            pass of the network). 1.0 is the plain conditioned model.
        rhythm_temperature, type_temperature: a note token's rhythm and its chord relation drawn
            at their own temperatures (`engine.models.steer.temper`), on top of ``temperature``.
        register: how strongly notes are weighed by how comfortably their pitch lands in the
            register (`engine.models.steer.Register`); 0 turns the decoder's forward pass off.
        register_sd: the register's bell, in semitones around ``register_centre``.
        register_centre: the register's middle, a MIDI pitch (None: the middle of ``pitch_range``).
        pitch_range: the decoder's pitch range (`engine.music.grammar.PitchRange`), for ``register``.
        prev_pitch: the pitch sounding before the sampled notes (a seed's last note), for ``register``.
    """

    bars: int
    meter: tuple[int, int] = (4, 4)
    temperature: float = 1.0
    top_p: float = 0.95
    seed: int = 0
    changes: tuple[BarChanges, ...] | None = None
    primer: tuple[str, ...] = ()
    form: int | None = None
    consonant_strong_beats: bool = False
    chord_temperature: float | None = None
    allow_no_chord: bool = False
    era: int = 0
    player: int = 0
    guidance: float = 1.0
    rhythm_temperature: float = 1.0
    type_temperature: float = 1.0
    register: float = 0.0
    register_sd: float = 7.0
    register_centre: float | None = None
    pitch_range: g.PitchRange = g.PitchRange()
    prev_pitch: int | None = None

    def __post_init__(self) -> None:
        if self.bars < 0:
            raise EngineError(f"bars must be >= 0, got {self.bars}")
        if not self.temperature > 0:
            raise EngineError(f"temperature must be > 0, got {self.temperature}")
        if self.form is not None and self.form < 1:
            raise EngineError(f"form must be >= 1 bar, got {self.form}")
        if self.chord_temperature is not None and not self.chord_temperature > 0:
            raise EngineError(f"chord_temperature must be > 0, got {self.chord_temperature}")
        if not (self.rhythm_temperature > 0 and self.type_temperature > 0 and self.register >= 0
                and self.register_sd > 0):
            raise EngineError("rhythm and type temperatures and the register's spread must be > 0, and the register "
                              f">= 0; got {self.rhythm_temperature}, {self.type_temperature}, {self.register_sd}, "
                              f"{self.register}")
        if not 0 < self.top_p <= 1:
            raise EngineError(f"top_p must be in (0, 1], got {self.top_p}")
        if not 0 <= self.guidance <= 4:
            raise EngineError(f"guidance must be in [0, 4], got {self.guidance}")
        if self.era < 0 or self.player < 0:
            raise EngineError(f"era and player ids must be >= 0, got {self.era} and {self.player}")
        if self.meter not in g.METERS:
            raise EngineError(f"meter {self.meter} is not supported")
        for tok in self.primer:
            if tok not in g.TOKEN_ID:
                raise EngineError(f"primer token {tok!r} is not in the vocabulary")
        for bar in self.changes or ():
            for _, name in bar:
                if name not in g.TOKEN_ID:
                    raise EngineError(f"chord {name!r} is not in the vocabulary")


class _Run:
    """The sampling state of one request."""

    def __init__(self, req: SampleRequest) -> None:
        self.req = req
        self.state = st.GrammarState()
        self.draw = Uniform(req.seed)
        self.primer = [g.TOKEN_ID[t] for t in req.primer]
        self.target_bars: int | None = None  # bars in the primer + requested, set after the primer
        self.done = False
        self.out: list[int] = []
        self.written: list[list[tuple[int, str]]] = []  # chord changes the model wrote, per new bar
        self.register: Register | None = None  # the decoder's forward pass, from the first sampled token
        if not self.primer:
            self._start_register()

    def _start_register(self) -> None:
        if self.req.register > 0:
            self.register = Register(self.req.pitch_range, self.req.prev_pitch, self.req.register_sd,
                                     self.req.register_centre)

    def chord(self) -> Chord:
        return st.TOKENS[st.CHORD_TOKEN_IDS[self.state.chord]].chord

    def _new_bar(self) -> int:
        return self.state.bars - (self.target_bars - self.req.bars) - 1

    def _bar_changes(self) -> BarChanges | None:
        if self.req.changes:
            return self.req.changes[self._new_bar() % len(self.req.changes)]
        form = self.req.form
        if form and self._new_bar() >= form and len(self.written) >= form:
            return tuple(self.written[self._new_bar() % form])
        return None

    def forced(self) -> tuple[int | None, np.ndarray | None]:
        """The token forced next, or (None, mask) to sample within the grammar's mask."""
        s = self.state
        if len(self.out) < len(self.primer):
            return self.primer[len(self.out)], None
        if self.target_bars is None:
            at_bar_end = s.meter is None or s.pos >= s.bar_len
            if not at_bar_end:  # a primer ending mid-bar: finish that bar first
                return None, s.allowed(meter=self.req.meter)
            self.target_bars = s.bars + self.req.bars
        if s.meter is None or s.pos >= s.bar_len:
            if s.bars >= self.target_bars:
                self.done = True
                return None, None
            return g.TOKEN_ID[f"BAR:{self.req.meter[0]}/{self.req.meter[1]}"], None
        changes = self._bar_changes()
        if changes is None:
            mask = s.allowed(meter=self.req.meter)
            if not self.req.allow_no_chord:
                mask[_NC_ID] = False
                if s.last == "bar" and not mask.any():
                    mask[_NC_ID] = True
            return None, mask
        if s.last == "bar":
            return g.TOKEN_ID[changes[0][1]], None
        upcoming = [off for off, _ in changes if off > 0]
        for off, name in changes:
            if off == s.pos and off > 0 and s.last != "chord":
                if g.TOKEN_ID[name] != st.CHORD_TOKEN_IDS[s.chord]:
                    return g.TOKEN_ID[name], None
        nxt = min((o for o in upcoming if o > s.pos), default=None)
        mask = s.allowed(next_change=nxt if nxt is not None else s.bar_len, meter=self.req.meter)
        mask &= ~st._IS_CHORD  # the harmony is given
        return None, mask

    def strong(self) -> bool:
        s = self.state
        half = s.bar_len // 2 if s.meter and s.meter[0] % 2 == 0 else -1
        return s.pos == 0 or s.pos == half

    def push(self, token_id: int) -> None:
        if self.register is not None and IS_NOTE[token_id]:
            self.register.push(token_id, self.chord())
        self.state.push(token_id)
        self.out.append(token_id)
        if self.primer and len(self.out) == len(self.primer):
            self._start_register()
        if self.target_bars is None or self.req.changes or not self.req.form:
            return
        kind = st.TOKENS[token_id].kind
        if kind == "bar" and self._new_bar() < self.req.form:
            self.written.append([])
        elif kind == "chord" and self.written and self._new_bar() < self.req.form:
            self.written[-1].append((self.state.pos, g.VOCAB[token_id]))


def _pick(logits: np.ndarray, mask: np.ndarray, req: SampleRequest, draw: Callable[[], float]) -> int:
    """Sample one token from (V,) logits restricted to ``mask``, with temperature and top-p.

    The only randomness is one uniform draw from the request's own generator, so a request's
    tokens depend on its seed alone, batched or not.
    """
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        raise EngineError("the grammar allows no token here (internal error)")
    temperature = req.temperature
    if req.chord_temperature is not None and st._IS_CHORD[idx].all():
        temperature = req.chord_temperature
    x = logits[idx].astype(np.float64) / temperature
    p = np.exp(x - x.max())
    p /= p.sum()
    p = temper(p, idx, req.rhythm_temperature, req.type_temperature)
    order = np.argsort(-p, kind="stable")
    sorted_p = p[order]
    if req.top_p < 1.0:
        keep = int(np.searchsorted(np.cumsum(sorted_p), req.top_p) + 1)
        sorted_p = sorted_p[:keep] / sorted_p[:keep].sum()
        order = order[:keep]
    u = draw()
    k = min(int(np.searchsorted(np.cumsum(sorted_p), u, side="right")), len(order) - 1)
    return int(idx[order[k]])


def pick_device(device: str = "auto") -> torch.device:  # noqa: F821 - torch is imported here
    """The torch device for ``auto`` (CUDA when present, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``.

    Raises:
        EngineError: another name, or CUDA asked for where there is none.
    """
    import torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device != "cpu" and not (device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit())):
        raise EngineError(f"device must be auto, cpu, cuda or cuda:N, got {device!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise EngineError(f"device {device} asked for, but torch sees no CUDA GPU here (use cpu or auto)")
    return torch.device(device)


def _conditioning(config: Any, requests: list[SampleRequest]) -> tuple[np.ndarray, np.ndarray, bool]:
    """(cond (B, 2) era and player ids, guidance weights (B, 1) float32, whether any request is
    guided) for a model with ``config`` (`engine.models.config.ModelConfig`)."""
    for r in requests:
        if (config.n_eras and r.era >= config.n_eras) or (config.n_players and r.player >= config.n_players):
            raise EngineError(f"era id {r.era} or player id {r.player} is outside the model's vocabulary")
    cond = np.array([(r.era if config.n_eras else 0, r.player if config.n_players else 0) for r in requests],
                    dtype=np.int64)
    guide = np.array([r.guidance if (r.era or r.player) else 1.0 for r in requests], dtype=np.float32)[:, None]
    return cond, guide, bool((guide != 1.0).any()) and bool(config.n_eras or config.n_players)


def _advance(run: _Run, logits: np.ndarray, pad: int) -> int:
    """The run's next token (forced, or picked from ``logits`` within the grammar), pushed; PAD
    once the run is done."""
    if run.done:
        return pad
    forced, mask = run.forced()
    tid = pad
    if forced is not None:
        tid = forced
    elif mask is not None:
        if run.req.consonant_strong_beats and run.strong():
            mask = mask & ~_DISSONANT
        if run.register is not None:
            logits, mask = run.register.steer(logits, mask, run.chord(), run.req.register)
        tid = _pick(logits, mask, run.req, run.draw)
    if run.done:
        return pad
    run.push(tid)
    return tid


def sample(
    model: Any,
    requests: list[SampleRequest],
    device: str | torch.device | None = None,  # noqa: F821
    progress: Callable[[int], None] | None = None,
    max_steps: int = 20_000,
) -> list[list[str]]:
    """Sample token sequences, one per request, in one batch.

    Args:
        model: the network: a `engine.models.lstm.ChorusLSTM` (its device is used unless ``device`` is
            given) or its numpy twin `engine.models.nplstm.NumpyMelody` (the CPU, no torch).
        requests: what to sample; each has its own seed.
        progress: called with the step number after each batched step.
        max_steps: a bound on steps, whatever the requests ask.
    Returns:
        per request, the tokens (primer included, without BOS).
    """
    if not requests:
        return []
    runs = [_Run(r) for r in requests]
    tokens = np.full((len(runs),), g.TOKEN_ID["BOS"], dtype=np.int64)
    feats = np.array([r.state.features() for r in runs], dtype=np.int64)
    cond, guide, guided = _conditioning(model.config, requests)
    if getattr(model, "numpy", False):
        from engine.models.nplstm import one_blas_thread

        with one_blas_thread():
            return _loop(runs, model.stepper(), tokens, feats, cond, guide, guided, progress, max_steps)
    return _loop(runs, _torch_steps(model, device), tokens, feats, cond, guide, guided, progress, max_steps)


def _loop(runs: list[_Run], step_fn: Callable, tokens: np.ndarray, feats: np.ndarray, cond: np.ndarray,
          guide: np.ndarray, guided: bool, progress: Callable[[int], None] | None, max_steps: int) -> list[list[str]]:
    """The batched sampling steps (see `sample`)."""
    pad = g.TOKEN_ID["PAD"]
    hidden = hidden_u = None
    for step in range(max_steps):
        logits, hidden = step_fn(tokens, feats, hidden, cond)
        if guided:  # the unconditioned pass, for classifier-free guidance
            plain, hidden_u = step_fn(tokens, feats, hidden_u, np.zeros_like(cond))
            logits = plain + guide * (logits - plain)
        next_tokens = [_advance(run, logits[i], pad) for i, run in enumerate(runs)]
        next_feats = [run.state.features() for run in runs]
        if progress:
            progress(step + 1)
        if all(r.done for r in runs):
            break
        tokens = np.array(next_tokens, dtype=np.int64)
        feats = np.array(next_feats, dtype=np.int64)
    else:
        raise EngineError(f"sampling did not finish within {max_steps} steps")
    return [[g.VOCAB[t] for t in r.out] for r in runs]


def _torch_steps(model: Any, device: Any) -> Callable:
    """The torch network's one-step evaluator on numpy inputs: (tokens (B,), feats (B, 3), state,
    cond (B, 2)) -> (logits (B, V) float32 numpy, state), the state kept on the device."""
    import torch

    dev = torch.device(device) if device is not None else next(model.parameters()).device
    model = model.to(dev).eval()
    stepper = model.stepper()

    @torch.no_grad()
    def step(tokens: np.ndarray, feats: np.ndarray, state: Any, cond: np.ndarray) -> tuple[np.ndarray, Any]:
        logits, state = stepper(torch.from_numpy(tokens).to(dev), torch.from_numpy(feats).to(dev), state,
                                torch.from_numpy(cond).to(dev))
        return logits.float().cpu().numpy(), state

    return step
