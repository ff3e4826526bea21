"""A request's uniform draws, the same numbers as ``torch.Generator().manual_seed(seed)`` gives to
``torch.rand(1, generator=g, dtype=torch.float64)``, computed with numpy.

Sampling is stateless and seeded: a request's tokens depend on its seed alone. Those numbers were
first drawn from a torch generator; drawing them here gives the same clips with or without torch
(`engine.models.nplstm` samples without importing it, so a cold ``chorus compose`` starts in a fraction
of the time). torch's CPU generator is a 32-bit Mersenne Twister seeded like MT19937's
``init_genrand`` with the seed's low 32 bits, as numpy's legacy ``RandomState`` is; a float64 draw
takes two 32-bit outputs (the first as the high word) and keeps the low 53 bits of that 64-bit
number, divided by 2**53. ``tests/engine/test_npmodel.py`` checks the equality against torch.
"""
from __future__ import annotations

import numpy as np

_BLOCK = 64  # draws fetched at a time (the stream is sequential, so blocks change nothing)
_MASK = np.uint64((1 << 53) - 1)
_SCALE = 1.0 / (1 << 53)


class Uniform:
    """Uniform draws in [0, 1) for one seed (see the module doc)."""

    def __init__(self, seed: int) -> None:
        self._rs = np.random.RandomState(int(seed) % (2**63) & 0xFFFFFFFF)
        self._buf: list[float] = []

    def __call__(self) -> float:
        if not self._buf:
            raw = self._rs.randint(0, 2**32, size=2 * _BLOCK, dtype=np.uint32).astype(np.uint64)
            words = (raw[0::2] << np.uint64(32)) | raw[1::2]
            self._buf = ((words & _MASK).astype(np.float64) * _SCALE).tolist()[::-1]
        return self._buf.pop()
