"""Score notes are lead-sheet notes: one shape, validated on construction with the bad value named."""
from __future__ import annotations

import pytest

from engine.band.score import ScoreNote
from engine.errors import EngineError
from engine.music.leadsheet import Note


def test_a_score_note_is_a_validated_note_with_a_start() -> None:
    n = ScoreNote(4.5, 0.5, 60, 80)
    assert isinstance(n, Note) and n.start == n.onset == 4.5
    for bad, message in (((0.0, 0.0, 60), "duration must be positive, got 0.0"), ((0.0, 1.0, 128), "pitch must be 0..127, got 128"),
                         ((0.0, 1.0, 60, 0), "velocity must be 1..127, got 0")):
        with pytest.raises(EngineError, match=message):
            ScoreNote(*bad)
