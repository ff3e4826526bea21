"""The harmony model: an LSTM that writes a song form's changes in a key.

Representation (key-independent)
    One step per half bar (``HarmonyConfig.slots`` 2: jazz, folk), or one per beat (``slots`` 3
    or more, at most that many steps a bar: the chorales, whose chords change on the beat). The token is ``HOLD`` (the chord goes on) or a new chord written as
    its root's interval from the previous chord's root (from the tonic for the first chord) and
    its family (``engine.chords.FAMILY_NAMES``): ``1 + interval * 16 + family``. The inputs also
    give the sounding chord as a degree of the key (so the model knows where it stands), the mode,
    the place in the form (slot, bar in section, bars left, section label and number, sections
    left, whether the section repeats an earlier one, the section's length) and the era.

Writing a chorus (`write_chorus`)
    Sections are written in order; a section that repeats an earlier label copies its chords
    (`engine.forms`), and the model writes only its second ending. The form's anchors restrict
    roots at a few places; everything else is sampled, seeded by the call's own generator.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from engine.chords import FAMILY_NAMES, Chord
from engine.errors import EngineError
from engine.forms import Form
from engine.model import check_bounds

N_FAM = len(FAMILY_NAMES)
HOLD = 0
N_OUT = 1 + 12 * N_FAM  # HOLD + (interval, family)
BOS = N_OUT  # input only
NO_CHORD_REL = 12 * N_FAM  # "no chord yet" for the sounding-chord input
LABELS = ("A", "B", "C", "D", "I")
ERAS = ("", "TRADITIONAL", "SWING", "BEBOP", "COOL", "HARDBOP", "POSTBOP", "FUSION", "FREE")
# (name, number of values) of each position feature, in order
FEATURES = (("slot", 2), ("bar", 16), ("left", 16), ("label", len(LABELS) + 1), ("section", 8),
            ("sections_left", 4), ("repeat", 2), ("mode", 2), ("length", 4), ("era", len(ERAS)))


# Inclusive bounds of the harmony model's whole-number fields (a few million weights at most).
HARMONY_BOUNDS: dict[str, tuple[int, int]] = {"emb": (1, 1024), "hidden": (1, 1024), "layers": (1, 4), "slots": (2, 8)}


@dataclass(frozen=True)
class HarmonyConfig:
    """Hyperparameters of the harmony model; checked on construction (raises ConfigError)."""

    emb: int = 64
    hidden: int = 160
    layers: int = 2
    dropout: float = 0.2
    slots: int = 2  # steps per bar: 2 = half bars; more = one per beat, up to this many

    def __post_init__(self) -> None:
        check_bounds(self, HARMONY_BOUNDS, "harmony.config")

    def to_dict(self) -> dict:
        return asdict(self)


def chord_token(prev_root: int, chord: Chord) -> int:
    return 1 + ((chord.root - prev_root) % 12) * N_FAM + FAMILY_NAMES.index(chord.family)


def degree_index(tonic: int, chord: Chord | None) -> int:
    if chord is None:
        return NO_CHORD_REL
    return ((chord.root - tonic) % 12) * N_FAM + FAMILY_NAMES.index(chord.family)


def steps_per_bar(slots: int, beats: int) -> int:
    """Harmony steps in a bar of ``beats`` beats: two half bars, or (``slots`` > 2) one per beat,
    at most ``slots``."""
    return 2 if slots == 2 else max(1, min(slots, beats))


def bar_chords(steps: list[Chord]) -> tuple[Chord, ...]:
    """A bar's chords from its steps, in the fewest equal parts that keep them: ``(C, C, G, G)``
    is ``(C, G)``, ``(C, C, C, C)`` is ``(C,)`` (the chords of a bar share it equally)."""
    n = len(steps)
    for parts in range(1, n + 1):
        if n % parts == 0:
            size = n // parts
            if all(steps[i] == steps[i - i % size] for i in range(n)):
                return tuple(steps[::size])
    return tuple(steps)


def length_bucket(bars: int) -> int:
    return 0 if bars <= 8 else 1 if bars <= 12 else 2 if bars <= 16 else 3


def position(slot: int, bar: int, bars: int, label: str, section: int, sections: int, repeat: bool,
             mode: str, era: str = "") -> list[int]:
    """The position features of one step (see `FEATURES`)."""
    return [slot, min(bar, 15), min(bars - 1 - bar, 15), LABELS.index(label) if label in LABELS else len(LABELS),
            min(section, 7), min(sections - 1 - section, 3), int(repeat), int(mode == "minor"),
            length_bucket(bars), ERAS.index(era) if era in ERAS else 0]


class HarmonyLSTM(nn.Module):
    """Next-step chord token from the previous token, the sounding degree and the position."""

    def __init__(self, config: HarmonyConfig) -> None:
        super().__init__()
        self.config = config
        self.tok = nn.Embedding(N_OUT + 1, config.emb)
        self.deg = nn.Embedding(NO_CHORD_REL + 1, config.emb)
        self.pos = nn.ModuleList(nn.Embedding(config.slots if name == "slot" else n, config.emb) for name, n in FEATURES)
        self.drop = nn.Dropout(config.dropout)
        self.lstm = nn.LSTM(config.emb, config.hidden, config.layers, batch_first=True,
                            dropout=config.dropout if config.layers > 1 else 0.0)
        self.head = nn.Linear(config.hidden, N_OUT)

    def forward(self, tokens: torch.Tensor, feats: torch.Tensor,
                state: tuple[torch.Tensor, torch.Tensor] | None = None):
        """tokens (B, T); feats (B, T, 1 + len(FEATURES)): the sounding degree, then the position
        features -> logits (B, T, N_OUT) for the step, and the LSTM state."""
        out, state = self.lstm(self.drop(self._inputs(tokens, feats)), state)
        return self.head(self.drop(out)), state

    def _inputs(self, tokens: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
        x = self.tok(tokens) + self.deg(feats[..., 0])
        for i, emb in enumerate(self.pos):
            x = x + emb(feats[..., i + 1])
        return x  # (..., emb)

    @torch.no_grad()
    def stepper(self) -> _Step:
        """A one-step evaluator for writing changes (eval mode, no dropout), in numpy: a chorus is
        64 steps of batch 1, where torch's per-call overhead would cost more than the arithmetic."""
        return _Step(self)


class _Step:
    """`HarmonyLSTM` one step at a time (numpy float32, the same equations as ``nn.LSTM``)."""

    def __init__(self, model: HarmonyLSTM) -> None:
        def np_(t: torch.Tensor) -> np.ndarray:
            return t.detach().cpu().float().numpy()

        self.tables = [np_(model.tok.weight), np_(model.deg.weight), *(np_(e.weight) for e in model.pos)]
        self.layers = []
        for i in range(model.config.layers):
            w = torch.cat([getattr(model.lstm, f"weight_ih_l{i}"), getattr(model.lstm, f"weight_hh_l{i}")], dim=1)
            self.layers.append((np_(w.t()), np_(getattr(model.lstm, f"bias_ih_l{i}") + getattr(model.lstm, f"bias_hh_l{i}"))))
        self.head = (np_(model.head.weight.t()), np_(model.head.bias))
        self.hidden = model.config.hidden

    def __call__(self, token: int, feats: list[int], state: list | None) -> tuple[np.ndarray, list]:
        """token, feats (the sounding degree, then the position features) -> logits (N_OUT,), state."""
        x = self.tables[0][token].copy()
        for table, value in zip(self.tables[1:], feats, strict=True):
            x += table[value]
        if state is None:
            zeros = np.zeros(self.hidden, dtype=np.float32)
            state = [(zeros, zeros)] * len(self.layers)
        new_state = []
        for (w, b), (h, c) in zip(self.layers, state, strict=True):
            i, f, g, o = np.split(np.concatenate([x, h]) @ w + b, 4)
            c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
            h = _sigmoid(o) * np.tanh(c)
            new_state.append((h, c))
            x = h
        return x @ self.head[0] + self.head[1], new_state


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass
class _Cursor:
    """Where the writing stands: the previous token and the sounding chord."""

    tonic: int
    token: int = BOS
    chord: Chord | None = None

    @property
    def root(self) -> int:
        return self.chord.root if self.chord is not None else self.tonic

    def push(self, token: int) -> None:
        if token != HOLD:
            iv, fam = divmod(token - 1, N_FAM)
            self.chord = Chord((self.root + iv) % 12, FAMILY_NAMES[fam])
        self.token = token


def _mask(cur: _Cursor, allowed: frozenset[int] | None, hold_only: bool) -> np.ndarray:
    mask = np.zeros(N_OUT, dtype=bool)
    if hold_only and cur.chord is not None:
        mask[HOLD] = True
        return mask
    mask[1:] = True
    if cur.chord is not None:
        mask[HOLD] = True
        mask[chord_token(cur.root, cur.chord)] = False  # a "new" chord equal to the sounding one
    if allowed is not None:
        for t in np.flatnonzero(mask):
            deg = (cur.chord.root - cur.tonic) % 12 if t == HOLD else ((cur.root + (t - 1) // N_FAM) - cur.tonic) % 12
            mask[t] = deg in allowed
        if not mask.any():
            raise EngineError("the form's anchors allow no chord here (internal error)")
    return mask


def _draw(logits: np.ndarray, mask: np.ndarray, temperature: float, top_p: float, gen: torch.Generator) -> int:
    x = logits.astype(np.float64)
    x = np.where(mask, x / temperature, -np.inf)
    p = np.exp(x - x.max())
    p /= p.sum()
    order = np.argsort(-p, kind="stable")
    cum = np.cumsum(p[order])
    keep = order[: int(np.searchsorted(cum, top_p) + 1)]
    q = p[keep] / p[keep].sum()
    u = float(torch.rand(1, generator=gen, dtype=torch.float64))
    return int(keep[min(int(np.searchsorted(np.cumsum(q), u, side="right")), len(keep) - 1)])


@torch.no_grad()
def write_chorus(model: HarmonyLSTM, form: Form, tonic: int, mode: str, seed: int, temperature: float = 1.0,
                 top_p: float = 0.95, era: str = "", split_bars: bool = True, beats: int = 4) -> list[tuple[Chord, ...]]:
    """One chorus of ``form`` in the key (``tonic`` pitch class, ``mode``): per bar, its chords
    (`bar_chords`: one, or several sharing the bar equally). A half-bar model (``slots`` 2) writes
    one chord per bar when ``split_bars`` is False (odd meters); a per-beat model writes ``beats``
    steps a bar (`steps_per_bar`). A form's anchor on a half bar falls on that half's first step.

    Stateless: the seed alone decides the changes.
    """
    model.eval()
    step = model.stepper()
    n = steps_per_bar(model.config.slots, beats)
    gen = torch.Generator().manual_seed(int(seed) % (2**63))
    cur, state = _Cursor(tonic), None
    slots: list[Chord] = []
    first: dict[str, int] = {}  # label -> first slot of its first occurrence
    layout = form.layout()
    for si, (label, occurrence, _start, bars) in enumerate(layout):
        source = first.get(label)
        first.setdefault(label, len(slots))
        spec = form.sections[si]
        anchors = {(bar, half * n // 2): roots for (bar, half), roots in spec.anchors.items()}
        src_bars = form.sections[[s.label for s in form.sections].index(label)].bars
        last = si == len(layout) - 1
        copy_bars = 0
        if source is not None and src_bars == bars:
            copy_bars = bars if (last and form.close_with_first) else max(0, bars - form.ending_bars)
        for bar in range(bars):
            for slot in range(n):
                feats = position(slot, bar, bars, label, si, len(layout), occurrence > 0, mode, era)
                logits, state = step(cur.token, [degree_index(tonic, cur.chord), *feats], state)
                if bar < copy_bars:
                    chord = slots[source + bar * n + slot]
                    token = HOLD if chord == cur.chord else chord_token(cur.root, chord)
                else:
                    mask = _mask(cur, anchors.get((bar, slot)), hold_only=n == 2 and slot == 1 and not split_bars)
                    token = _draw(logits, mask, temperature, top_p, gen)
                cur.push(token)
                slots.append(cur.chord)
    return [bar_chords(slots[i:i + n]) for i in range(0, len(slots), n)]


def key_weights_table(keys: list[tuple[int, str]]) -> dict[str, float]:
    """How often each key (``"10 major"``) occurs among training tunes, as shares."""
    counts: dict[str, float] = {}
    for tonic, mode in keys:
        counts[f"{tonic} {mode}"] = counts.get(f"{tonic} {mode}", 0) + 1
    total = sum(counts.values()) or 1.0
    return {k: v / total for k, v in sorted(counts.items())}


def draw_key(weights: dict[str, float], rnd) -> tuple[int, str]:
    """A key drawn with the style's own weights; ``rnd`` is a `random.Random`."""
    if not weights:
        return 0, "major"
    names = sorted(weights)
    tonic, mode = rnd.choices(names, weights=[weights[n] for n in names])[0].split()
    return int(tonic), mode
