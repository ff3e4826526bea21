"""The harmony model's torch network (`engine.models.harmony` describes it): what training builds and
checkpoints hold; writing changes runs its equations in numpy (`engine.models.harmony.HarmonyStep`)."""
from __future__ import annotations

import torch
from torch import nn

from engine.models.harmony import FEATURES, N_OUT, NO_CHORD_REL, HarmonyConfig, HarmonyStep


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
    def stepper(self) -> HarmonyStep:
        """A one-step evaluator for writing changes (eval mode, no dropout), in numpy: a chorus is
        64 steps of batch 1, where torch's per-call overhead would cost more than the arithmetic."""
        return HarmonyStep({k: v.detach().cpu().float().numpy() for k, v in self.state_dict().items()}, self.config)
