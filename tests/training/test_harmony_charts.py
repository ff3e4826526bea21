"""Each style's harmony corpora come from its training preset, not from branches on its name."""
from __future__ import annotations

from pathlib import Path

import pytest

from engine.band.styles import STYLES
from engine.errors import EngineError
from training.fit import harmony


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, bool]]:
    seen: list[tuple[str, str, bool]] = []

    def reader(root: Path, kind: str, even_meters: bool, say) -> list:  # noqa: ANN001
        seen.append((kind, root.name, even_meters))
        return []

    monkeypatch.setattr(harmony, "CHART_KINDS", dict.fromkeys(harmony.CHART_KINDS, reader))
    return seen


def test_each_style_reads_the_corpora_its_preset_names(calls: list[tuple[str, str, bool]], tmp_path: Path) -> None:
    harmony.read_charts("jazz", tmp_path, lambda _: None)
    assert calls == [("wjazzd-charts", "wjazzd", True), ("midi", "deepjazz_metheny", True)]
    calls.clear()
    harmony.read_charts("folk", tmp_path, lambda _: None)
    assert calls == [("nottingham", "nottingham", False)]
    calls.clear()
    harmony.read_charts("bach", tmp_path, lambda _: None)
    assert calls == [("bach", "bach", False)]


def test_every_named_kind_has_a_reader_and_a_style_without_corpora_is_a_clear_error(tmp_path: Path) -> None:
    for style in STYLES.values():
        for source in (style.training.get("harmony") or {}).get("charts", ()):
            assert source.partition("=")[0] in harmony.CHART_KINDS, (style.name, source)
    with pytest.raises(EngineError, match="metheny names no harmony corpora"):
        harmony.read_charts("metheny", tmp_path, lambda _: None)
