"""The melody network's one-step equations in numpy: sampling on the CPU without importing torch.

`engine.models.lstm.ChorusLSTM` is what training builds and what a GPU samples with. On a CPU a clip
needs only its forward steps, and importing torch alone takes about 2 s, longer than composing
the clip; so ``chorus compose`` (and anything that passes ``numpy=True`` to
`engine.models.checkpoint.load_checkpoint`) reads the same ``model.safetensors`` into `NumpyMelody`,
whose `stepper` computes what `engine.models.lstm.Stepper` computes: the token, chord, position and
conditioning embeddings, each LSTM layer's two products fused into one, the head and the era's
logit bias. The draws come from `engine.models.seeded.Uniform` either way, so a seed gives the same
tokens (floating-point sums may differ in the last bit between the two libraries; where two
tokens are that close to a tie, which ``tests/engine/test_npmodel.py`` has not met, a clip could
part from the torch one).
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from engine.models.config import ModelConfig
from engine.music import state as st


def one_blas_thread():  # noqa: ANN201 - a threadpoolctl context manager
    """Hold numpy's BLAS to one thread while a small model steps: batch-1 products gain nothing
    from OpenBLAS's threads, and on a loaded machine their spinning made sampling 13 times slower
    (4.9 s against 0.37 s for a 30 s clip)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def cpu_only(device: str) -> bool:
    """Whether ``device`` (``auto``, ``cpu``, ``cuda``...) surely means the CPU, told without torch:
    ``cpu``, or ``auto`` on a machine without an NVIDIA driver (where torch could find no CUDA)."""
    if device == "cpu":
        return True
    return device == "auto" and not (Path("/dev/nvidiactl").exists() or Path("/proc/driver/nvidia").exists())


def melody_shapes(c: ModelConfig) -> dict[str, tuple[int, ...]]:
    """The name and shape of every weight of `engine.models.lstm.ChorusLSTM` with config ``c``."""
    in_dim = c.token_dim + c.chord_dim + 2 * c.pos_dim + c.cond_dim * ((c.n_eras > 0) + (c.n_players > 0))
    shapes: dict[str, tuple[int, ...]] = {
        "token_emb.weight": (c.vocab_size, c.token_dim), "chord_proj.weight": (c.chord_dim, 25),
        "chord_proj.bias": (c.chord_dim,), "pos_emb.weight": (c.max_pos + 1, c.pos_dim),
        "left_emb.weight": (c.max_pos + 1, c.pos_dim), "head.weight": (c.vocab_size, c.hidden),
        "head.bias": (c.vocab_size,),
    }
    if c.n_eras:
        shapes["era_emb.weight"] = (c.n_eras, c.cond_dim)
    if c.n_players:
        shapes["player_emb.weight"] = (c.n_players, c.cond_dim)
    if c.era_bias:
        shapes["era_bias.weight"] = (c.n_eras, c.vocab_size)
    return shapes | lstm_shapes(in_dim, c.hidden, c.layers)


def lstm_shapes(in_dim: int, hidden: int, layers: int, prefix: str = "lstm.") -> dict[str, tuple[int, ...]]:
    """The weights of a stacked ``nn.LSTM`` by their ``state_dict`` names, with their shapes."""
    shapes: dict[str, tuple[int, ...]] = {}
    for i in range(layers):
        shapes |= {f"{prefix}weight_ih_l{i}": (4 * hidden, in_dim if i == 0 else hidden),
                   f"{prefix}weight_hh_l{i}": (4 * hidden, hidden),
                   f"{prefix}bias_ih_l{i}": (4 * hidden,), f"{prefix}bias_hh_l{i}": (4 * hidden,)}
    return shapes


def check_shapes(weights: Mapping[str, np.ndarray], shapes: Mapping[str, tuple[int, ...]]) -> None:
    """Raises ValueError naming the first weight missing, unexpected or of the wrong shape (what
    torch's strict ``load_state_dict`` refuses)."""
    for name, shape in shapes.items():
        if name not in weights:
            raise ValueError(f"missing weight {name}")
        if tuple(weights[name].shape) != shape:
            raise ValueError(f"{name} has shape {tuple(weights[name].shape)}, the config says {shape}")
    extra = sorted(set(weights) - set(shapes))
    if extra:
        raise ValueError(f"unexpected weight {extra[0]}")


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def lstm_layers(weights: Mapping[str, np.ndarray], layers: int, prefix: str = "lstm.") -> list[tuple[np.ndarray, np.ndarray]]:
    """Per layer, (W (in + H, 4H), b (4H,)): the input and recurrent products fused into one."""
    out = []
    for i in range(layers):
        w = np.concatenate([weights[f"{prefix}weight_ih_l{i}"], weights[f"{prefix}weight_hh_l{i}"]], axis=1)
        b = weights[f"{prefix}bias_ih_l{i}"] + weights[f"{prefix}bias_hh_l{i}"]
        out.append((np.ascontiguousarray(w.T, dtype=np.float32), b.astype(np.float32)))
    return out


def lstm_step(layers: list[tuple[np.ndarray, np.ndarray]], x: np.ndarray, state: list | None,
              hidden: int) -> tuple[np.ndarray, list]:
    """One step of a stacked LSTM (``nn.LSTM``'s equations): x (B, in) -> top output (B, H), state."""
    if state is None:
        zeros = np.zeros((x.shape[0], hidden), dtype=np.float32)
        state = [(zeros, zeros)] * len(layers)
    new_state = []
    for (w, b), (h, c) in zip(layers, state, strict=True):
        i, f, g, o = np.split(np.concatenate([x, h], axis=1) @ w + b, 4, axis=1)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        new_state.append((h, c))
        x = h
    return x, new_state


class NumpyMelody:
    """`engine.models.lstm.ChorusLSTM`'s weights for sampling without torch (see the module doc).

    Raises:
        ValueError: the weights do not fit the config (missing, unexpected or misshapen).
    """

    numpy = True  # engine.models.sample steps it with numpy arrays

    def __init__(self, config: ModelConfig, weights: Mapping[str, np.ndarray]) -> None:
        check_shapes(weights, melody_shapes(config))
        self.config = config
        w = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}
        roots, pcs = st.chord_features()
        chord_table = np.concatenate([np.eye(13, dtype=np.float32)[np.asarray(roots)], np.asarray(pcs, np.float32)], axis=1)
        self.chord = chord_table @ w["chord_proj.weight"].T + w["chord_proj.bias"]  # (n_chords, chord_dim)
        self.token, self.pos, self.left = w["token_emb.weight"], w["pos_emb.weight"], w["left_emb.weight"]
        self.era, self.player = w.get("era_emb.weight"), w.get("player_emb.weight")
        self.era_bias = w.get("era_bias.weight")
        self.layers = lstm_layers(w, config.layers)
        self.head = (np.ascontiguousarray(w["head.weight"].T), w["head.bias"])

    def eval(self) -> NumpyMelody:
        return self

    def stepper(self) -> NumpyMelody:
        return self

    def __call__(self, tokens: np.ndarray, feats: np.ndarray, state: list | None,
                 cond: np.ndarray | None = None) -> tuple[np.ndarray, list]:
        """tokens (B,), feats (B, 3), state per layer (h, c) or None, cond (B, 2) era and player
        ids or None -> logits (B, V) float32 for the next token, and the new state."""
        cond = np.zeros((len(tokens), 2), dtype=np.int64) if cond is None else cond
        parts = [self.token[tokens], self.chord[feats[:, 0]], self.pos[feats[:, 1]], self.left[feats[:, 2]]]
        if self.era is not None:
            parts.append(self.era[cond[:, 0]])
        if self.player is not None:
            parts.append(self.player[cond[:, 1]])
        out, state = lstm_step(self.layers, np.concatenate(parts, axis=1), state, self.config.hidden)
        logits = out @ self.head[0] + self.head[1]
        if self.era_bias is not None:
            logits = logits + self.era_bias[cond[:, 0]]
        return logits, state
