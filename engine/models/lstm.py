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

import torch
from torch import nn

from engine.models.config import BOUNDS, MAX_PARAMETERS, ModelConfig, check_bounds
from engine.music import state as st

__all__ = ["BOUNDS", "MAX_PARAMETERS", "ChorusLSTM", "ModelConfig", "Stepper", "check_bounds"]

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
        # the rest of the network frozen (`training.fit.era_bias`); row 0 (no era) stays zero.
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
        # (B, in_dim); engine.models.harmony's model shares this stepper and has no cond input
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
