"""A result is checked against `bot.store.results.SCHEMA` before the bot uses it."""
from __future__ import annotations

import pytest

from bot.store.results import ResultError, check_result

GOOD = {"seconds": 30.0, "tempo": 160, "bars": 16, "seed": 7, "key": "F", "form": None, "changes": "Dm7 G7",
        "timings": {"total": 1.2}, "files": {"audio": "/x/clip.ogg", "midi": "/x/clip.mid", "picture": "/x/clip.png"}}


def test_a_well_formed_result_passes_unchanged() -> None:
    assert check_result(dict(GOOD)) == GOOD


@pytest.mark.parametrize("change, named", [
    ({"seconds": "12"}, "'seconds'"), ({"bars": 4.5}, "'bars'"), ({"seed": True}, "'seed'"),
    ({"files": {"midi": "/x/clip.mid"}}, "no audio"), ({"files": "clip.ogg"}, "'files'"),
    ({"timings": {"total": "fast"}}, "'total'"), ({"files": {**GOOD["files"], "exe": "/bin/sh"}}, "'exe'"),
])
def test_each_bad_field_is_named(change: dict, named: str) -> None:
    with pytest.raises(ResultError, match=named):
        check_result({**GOOD, **change})


def test_a_missing_required_key_or_a_non_mapping_is_refused() -> None:
    bad = dict(GOOD)
    del bad["tempo"]
    with pytest.raises(ResultError, match="no 'tempo'"):
        check_result(bad)
    with pytest.raises(ResultError, match="list"):
        check_result([GOOD])
