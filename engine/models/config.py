"""The melody network's hyperparameters (`ModelConfig`) and the bounds every checkpoint's config
must meet, without torch: a checkpoint is checked, and sampled by `engine.models.nplstm`, before (or
without) torch is imported."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from engine.errors import ConfigError
from engine.music import state as st

# Inclusive bounds of each whole-number field. A checkpoint's model_config meets them (and
# MAX_PARAMETERS) before any model is built, so a config that asks for gigabytes is one line.
BOUNDS: dict[str, tuple[int, int]] = {
    "vocab_size": (1, 65_536), "n_chords": (1, 4096), "max_pos": (1, 4096), "token_dim": (1, 2048),
    "chord_dim": (1, 2048), "pos_dim": (1, 2048), "hidden": (1, 4096), "layers": (1, 16),
    "n_eras": (0, 65_536), "n_players": (0, 65_536), "cond_dim": (1, 2048),
}
MAX_WEIGHTS_BYTES = 256 * 1024 * 1024  # the largest model.safetensors a checkpoint may hold
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
    era_bias: bool = False  # a learned per-era bias on the next-token logits (`training.fit.era_bias`)

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
