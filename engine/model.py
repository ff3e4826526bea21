"""The chord-conditioned LSTM over grammar tokens.

At every step the input is the token's embedding concatenated with an encoding of the sounding
chord (root one-hot and chord-tone pitch classes, as Magenta's chord-pitches encoding) and of the
place in the bar (position and units left), and, when the config has them, learned embeddings of
an era (the WJazzD style label) and a player. Id 0 of each is "unconditioned": training drops the
labels to 0 now and then, so a request that names neither gets the average of the corpus. A stacked
LSTM then a linear layer give the logits of the next token. Melody and harmony share the stream: chord-change tokens are predicted like notes,
so the same network writes the progression.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from engine import state as st
from engine.checkpoint import MAX_WEIGHTS_BYTES
from engine.errors import ConfigError

# Inclusive bounds of each whole-number field. A checkpoint's model_config meets them (and
# MAX_PARAMETERS) before any model is built, so a config that asks for gigabytes is one line.
BOUNDS: dict[str, tuple[int, int]] = {
    "vocab_size": (1, 65_536), "n_chords": (1, 4096), "max_pos": (1, 4096), "token_dim": (1, 2048),
    "chord_dim": (1, 2048), "pos_dim": (1, 2048), "hidden": (1, 4096), "layers": (1, 16),
    "n_eras": (0, 65_536), "n_players": (0, 65_536), "cond_dim": (1, 2048),
}
MAX_PARAMETERS = MAX_WEIGHTS_BYTES // 4  # float32 weights that fit a checkpoint's model.safetensors


def check_bounds(config: Any, bounds: dict[str, tuple[int, int]], prefix: str) -> None:
    """Check a config dataclass's whole-number fields against ``bounds`` and its ``dropout``.

    Raises:
        ConfigError: a value of the wrong type or out of bounds, named with ``prefix``.
    """
    for name, (lo, hi) in bounds.items():
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise ConfigError(f"{prefix}.{name} must be a whole number from {lo} to {hi:,}, not {value!r}")
    dropout = config.dropout
    if isinstance(dropout, bool) or not isinstance(dropout, int | float) or not 0 <= dropout < 1:
        raise ConfigError(f"{prefix}.dropout must be a number from 0 to below 1, not {dropout!r}")


@dataclass(frozen=True)
class ModelConfig:
    """Hyperparameters of the network (stored in every checkpoint); checked on construction.

    Raises:
        ConfigError: a field out of `BOUNDS`, or more than `MAX_PARAMETERS` weights in all.
    """

    vocab_size: int = st.V
    n_chords: int = st.N_CHORDS
    max_pos: int = st.MAX_POS
    token_dim: int = 128
    chord_dim: int = 32
    pos_dim: int = 32
    hidden: int = 384
    layers: int = 2
    dropout: float = 0.2
    n_eras: int = 0  # era ids (0 = unconditioned); 0 means the model has no era input at all
    n_players: int = 0  # player ids (0 = unconditioned); 0 means no player input
    cond_dim: int = 16  # size of each of the era and player embeddings
    era_bias: bool = False  # a learned per-era bias on the next-token logits (`training.era_bias`)

    def __post_init__(self) -> None:
        check_bounds(self, BOUNDS, "model_config")
        if not isinstance(self.era_bias, bool) or (self.era_bias and not self.n_eras):
            raise ConfigError(f"model_config.era_bias must be true or false, and true only with n_eras, not {self.era_bias!r}")
        if (n := self.parameters()) > MAX_PARAMETERS:
            raise ConfigError(f"model_config describes {n:,} weights ({4 * n / 1e9:.1f} GB as float32); "
                              f"at most {MAX_PARAMETERS:,}")

    def parameters(self) -> int:
        """How many weights `ChorusLSTM` has with this config, counted without building it."""
        h, v = self.hidden, self.vocab_size
        in_dim = (self.token_dim + self.chord_dim + 2 * self.pos_dim
                  + self.cond_dim * ((self.n_eras > 0) + (self.n_players > 0)))
        embeddings = (v * self.token_dim + 26 * self.chord_dim + 2 * (self.max_pos + 1) * self.pos_dim
                      + (self.n_eras + self.n_players) * self.cond_dim)
        lstm = sum(4 * h * ((in_dim if i == 0 else h) + h) + 8 * h for i in range(self.layers))
        return embeddings + lstm + h * v + v + (self.n_eras * v if self.era_bias else 0)

    def to_dict(self) -> dict:
        return asdict(self)


State = tuple[torch.Tensor, torch.Tensor]


class ChorusLSTM(nn.Module):
    """LSTM language model over grammar tokens, conditioned on chord and bar position."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        roots, pcs = st.chord_features()
        feats = torch.cat([nn.functional.one_hot(torch.tensor(roots), 13).float(), torch.tensor(pcs)], dim=1)
        self.register_buffer("chord_table", feats, persistent=False)  # (n_chords, 25), fixed
        self.token_emb = nn.Embedding(config.vocab_size, config.token_dim)
        self.chord_proj = nn.Linear(25, config.chord_dim)
        self.pos_emb = nn.Embedding(config.max_pos + 1, config.pos_dim)
        self.left_emb = nn.Embedding(config.max_pos + 1, config.pos_dim)
        self.drop = nn.Dropout(config.dropout)
        in_dim = config.token_dim + config.chord_dim + 2 * config.pos_dim
        self.era_emb = nn.Embedding(config.n_eras, config.cond_dim) if config.n_eras else None
        self.player_emb = nn.Embedding(config.n_players, config.cond_dim) if config.n_players else None
        in_dim += config.cond_dim * ((config.n_eras > 0) + (config.n_players > 0))
        self.lstm = nn.LSTM(in_dim, config.hidden, config.layers, batch_first=True,
                            dropout=config.dropout if config.layers > 1 else 0.0)
        self.head = nn.Linear(config.hidden, config.vocab_size)
        # Added to the logits of a request with an era: the era's own token frequencies, fitted with
        # the rest of the network frozen (`training.era_bias`); row 0 (no era) stays zero.
        self.era_bias = nn.Embedding(config.n_eras, config.vocab_size) if config.era_bias else None
        if self.era_bias is not None:
            nn.init.zeros_(self.era_bias.weight)

    def forward(self, tokens: torch.Tensor, feats: torch.Tensor, state: State | None = None,
                cond: torch.Tensor | None = None) -> tuple[torch.Tensor, State]:
        """Args:
            tokens: (B, T) token ids.
            feats: (B, T, 3) chord index, position and units left after each token.
            state: the LSTM state to continue from.
            cond: (B, T, 2) or (B, 2) era and player ids; None: unconditioned (all 0).
        Returns:
            logits (B, T, V) for the next token, and the new state.
        """
        x = self._inputs(tokens, feats, cond)  # (B, T, in_dim)
        out, state = self.lstm(self.drop(x), state)
        return self.biased(self.head(self.drop(out)), cond), state

    def biased(self, logits: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        """``logits`` (B, [T,] V) plus the era's bias when the model has one and ``cond`` (B, [T,] 2) names an era."""
        if self.era_bias is None or cond is None:
            return logits
        era = cond[..., 0]
        if era.dim() < logits.dim() - 1:  # (B,) ids for (B, T, V) logits
            era = era[:, None].expand(logits.shape[:-1])
        return logits + self.era_bias(era)

    def _inputs(self, tokens: torch.Tensor, feats: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        chord = self.chord_proj(self.chord_table[feats[..., 0]])
        parts = [self.token_emb(tokens), chord, self.pos_emb(feats[..., 1]), self.left_emb(feats[..., 2])]
        if self.era_emb is not None or self.player_emb is not None:
            if cond is None:
                cond = torch.zeros((*tokens.shape, 2), dtype=torch.long, device=tokens.device)
            elif cond.dim() == tokens.dim():  # (B, 2) for (B, T) tokens: the same ids at every step
                cond = cond[:, None, :].expand(*tokens.shape, 2)
            if self.era_emb is not None:
                parts.append(self.era_emb(cond[..., 0]))
            if self.player_emb is not None:
                parts.append(self.player_emb(cond[..., 1]))
        return torch.cat(parts, dim=-1)

    @torch.no_grad()
    def stepper(self) -> Stepper:
        """A one-token-at-a-time evaluator for sampling (eval mode, no dropout).

        Each layer's two matrix products are fused into one; on the CPU this is about 15 times
        faster than calling ``nn.LSTM`` on a sequence of length 1, with the same equations.
        """
        layers = []
        for i in range(self.config.layers):
            w = torch.cat([getattr(self.lstm, f"weight_ih_l{i}"), getattr(self.lstm, f"weight_hh_l{i}")], dim=1)
            b = getattr(self.lstm, f"bias_ih_l{i}") + getattr(self.lstm, f"bias_hh_l{i}")
            layers.append((w.t().contiguous(), b.contiguous()))
        return Stepper(self, layers)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


class Stepper:
    """Runs `ChorusLSTM` one step at a time; see `ChorusLSTM.stepper`."""

    def __init__(self, model: ChorusLSTM, layers: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        self.model = model
        self.layers = layers

    @torch.no_grad()
    def __call__(self, tokens: torch.Tensor, feats: torch.Tensor,
                 state: list[tuple[torch.Tensor, torch.Tensor]] | None,
                 cond: torch.Tensor | None = None) -> tuple[torch.Tensor, list]:
        """Args: tokens (B,), feats (B, 3), state per layer (h, c) each (B, H) or None, cond (B, 2)
        era and player ids or None.
        Returns: logits (B, V) for the next token, and the new state."""
        # (B, in_dim); engine.harmony's model shares this stepper and has no cond input
        x = self.model._inputs(tokens, feats) if cond is None else self.model._inputs(tokens, feats, cond)
        hidden = self.model.config.hidden
        if state is None:
            zeros = torch.zeros(x.shape[0], hidden, device=x.device, dtype=x.dtype)
            state = [(zeros, zeros)] * len(self.layers)
        new_state = []
        for (w, b), (h, c) in zip(self.layers, state, strict=True):
            gates = torch.addmm(b, torch.cat([x, h], dim=1), w)  # (B, 4H): input, forget, cell, output
            i, f, g, o = gates.chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            new_state.append((h, c))
            x = h
        return self.model.biased(self.model.head(x), cond), new_state
