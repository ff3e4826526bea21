"""The harmony model: an LSTM that writes a song form's changes in a key.

Representation (key-independent)
    One step per half bar (``HarmonyConfig.slots`` 2: jazz, folk), or one per beat (``slots`` 3
    or more, at most that many steps a bar: the chorales, whose chords change on the beat).
    The token is ``HOLD`` (the chord goes on) or a new chord written as
    its root's interval from the previous chord's root (from the tonic for the first chord) and
    its family (``engine.music.chords.FAMILY_NAMES``): ``1 + interval * 16 + family``. The inputs also
    give the sounding chord as a degree of the key (so the model knows where it stands), the mode,
    the place in the form (slot, bar in section, bars left, section label and number, sections
    left, whether the section repeats an earlier one, the section's length) and the era.

Writing a chorus (`write_chorus`)
    Sections are written in order; a section that repeats an earlier label copies its chords
    (`engine.music.forms`), and the model writes only its second ending. The form's anchors restrict
    roots at a few places; everything else is sampled, seeded by the call's own generator.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from engine.errors import EngineError
from engine.models.config import check_bounds
from engine.models.nplstm import check_shapes, lstm_shapes, one_blas_thread, sigmoid
from engine.models.seeded import Uniform
from engine.music.chords import FAMILY_NAMES, Chord
from engine.music.forms import Form

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


def harmony_shapes(c: HarmonyConfig) -> dict[str, tuple[int, ...]]:
    """The name and shape of every weight of `engine.models.harmony_net.HarmonyLSTM` with config ``c``."""
    shapes: dict[str, tuple[int, ...]] = {"tok.weight": (N_OUT + 1, c.emb), "deg.weight": (NO_CHORD_REL + 1, c.emb),
                                          "head.weight": (N_OUT, c.hidden), "head.bias": (N_OUT,)}
    for i, (name, n) in enumerate(FEATURES):
        shapes[f"pos.{i}.weight"] = (c.slots if name == "slot" else n, c.emb)
    return shapes | lstm_shapes(c.emb, c.hidden, c.layers)


class HarmonySteps:
    """The harmony model's weights as numpy arrays, for writing changes without torch (what
    `engine.models.checkpoint.load_checkpoint` gives with ``numpy=True``; `write_chorus` takes either).

    Raises:
        ValueError: the weights do not fit the config.
    """

    numpy = True

    def __init__(self, config: HarmonyConfig, weights: Mapping[str, np.ndarray]) -> None:
        check_shapes(weights, harmony_shapes(config))
        self.config = config
        self.weights = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}

    def eval(self) -> HarmonySteps:
        return self

    def stepper(self) -> HarmonyStep:
        return HarmonyStep(self.weights, self.config)


class HarmonyStep:
    """The harmony model one step at a time (numpy float32, the same equations as ``nn.LSTM``),
    from its weights by their ``state_dict`` names."""

    def __init__(self, weights: Mapping[str, np.ndarray], config: HarmonyConfig) -> None:
        self.tables = [weights["tok.weight"], weights["deg.weight"], *(weights[f"pos.{i}.weight"] for i in range(len(FEATURES)))]
        self.layers = []
        for i in range(config.layers):  # not npmodel.lstm_layers: this layout (a transposed view) keeps
            # the vector-matrix products, and so the changes, bit for bit what they were
            w = np.concatenate([weights[f"lstm.weight_ih_l{i}"], weights[f"lstm.weight_hh_l{i}"]], axis=1)
            self.layers.append((w.T, weights[f"lstm.bias_ih_l{i}"] + weights[f"lstm.bias_hh_l{i}"]))
        self.head = (weights["head.weight"].T, weights["head.bias"])
        self.hidden = config.hidden

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
            c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
            h = sigmoid(o) * np.tanh(c)
            new_state.append((h, c))
            x = h
        return x @ self.head[0] + self.head[1], new_state


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


def _draw(logits: np.ndarray, mask: np.ndarray, temperature: float, top_p: float, draw: Callable[[], float]) -> int:
    x = logits.astype(np.float64)
    x = np.where(mask, x / temperature, -np.inf)
    p = np.exp(x - x.max())
    p /= p.sum()
    order = np.argsort(-p, kind="stable")
    cum = np.cumsum(p[order])
    keep = order[: int(np.searchsorted(cum, top_p) + 1)]
    q = p[keep] / p[keep].sum()
    u = draw()
    return int(keep[min(int(np.searchsorted(np.cumsum(q), u, side="right")), len(keep) - 1)])


def write_chorus(model: Any, form: Form, tonic: int, mode: str, seed: int, temperature: float = 1.0,
                 top_p: float = 0.95, era: str = "", split_bars: bool = True, beats: int = 4,
                 prefix: Sequence[tuple[Chord, ...]] = ()) -> list[tuple[Chord, ...]]:
    """One chorus of ``form`` in the key (``tonic`` pitch class, ``mode``): per bar, its chords
    (`bar_chords`: one, or several sharing the bar equally). A half-bar model (``slots`` 2) writes
    one chord per bar when ``split_bars`` is False (odd meters); a per-beat model writes ``beats``
    steps a bar (`steps_per_bar`). A form's anchor on a half bar falls on that half's first step.

    ``prefix``: bars heard before this chorus (a seed's last bars, per bar its chords), fed to the
    model first as the end of a chorus of the same form, so the new changes go on from them.

    Stateless: the seed alone decides the changes.
    """
    with one_blas_thread():
        step, n = model.eval().stepper(), steps_per_bar(model.config.slots, beats)
        cur, state = _Cursor(tonic), None
        if prefix:
            state = _prime(step, n, form, tonic, mode, era, prefix, cur)
        return _write(step, n, form, tonic, mode, seed, temperature, top_p, era, split_bars, cur, state)


def _prime(step: HarmonyStep, n: int, form: Form, tonic: int, mode: str, era: str,
           prefix: Sequence[tuple[Chord, ...]], cur: _Cursor) -> list:
    """Feed ``prefix`` (per bar, its chords, spread over the bar's ``n`` steps) through the model as
    the last bars of the form's last section; returns the model's state and moves ``cur`` on."""
    label, occurrence, _start, bars = form.layout()[-1]
    sections = len(form.layout())
    state = None
    kept = [bar for bar in prefix if bar][-bars:]
    for i, chords in enumerate(kept):
        bar = bars - len(kept) + i
        for slot in range(n):
            chord = chords[min(len(chords) - 1, slot * len(chords) // n)]
            if chord.is_nc or chord.family not in FAMILY_NAMES:
                chord = cur.chord or Chord(tonic, "maj" if mode == "major" else "min")
            feats = position(slot, bar, bars, label, sections - 1, sections, occurrence > 0, mode, era)
            _, state = step(cur.token, [degree_index(tonic, cur.chord), *feats], state)
            cur.push(HOLD if chord == cur.chord else chord_token(cur.root, chord))
    return state


def _write(step: HarmonyStep, n: int, form: Form, tonic: int, mode: str, seed: int, temperature: float,
           top_p: float, era: str, split_bars: bool, cur: _Cursor, state: list | None) -> list[tuple[Chord, ...]]:
    """`write_chorus`'s steps: ``n`` a bar, from ``cur`` and the model's ``state``."""
    draw = Uniform(seed)
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
                    token = _draw(logits, mask, temperature, top_p, draw)
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
