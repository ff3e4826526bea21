"""The one request shape: a request and a result cross both queue backends unchanged."""
from __future__ import annotations

import base64
import dataclasses
import json
import multiprocessing as mp
from pathlib import Path

import pytest
from kombu.serialization import dumps, loads

from bot.queues import policy
from bot.queues.base import WorkItem
from bot.queues.celery.payload import (
    decode_item,
    encode_item,
    pack_result,
    pack_sheet,
    unpack_result,
)
from bot.settings import BotSettings
from bot.store.db import Job
from engine.compose.request import ComposeRequest, RequestError
from engine.compose.result import ComposeResult

SEED = b"MThd\x00\x00\x00\x06\x00\x01\x00\x02\x01\xe0" + bytes(range(256))


def full_request() -> ComposeRequest:
    """A request with every field set away from its default. A continuation takes no changes since
    `ComposeRequest.build` refuses them, but a job stored before that may hold both: the shape
    carries whatever it is given."""
    req = ComposeRequest.build("jazz", "1m5s", BotSettings(), ["jazz"], tempo=142.5, seed=2**62 + 7, temperature=0.85,
                               changes="Dm7 G7 | Cmaj7 | A7alt", audio_format="flac", parts={"lead", "bass"})
    return dataclasses.replace(req, seed_midi=SEED)


def celery_trip(payload: dict) -> dict:
    """Through Celery's JSON serializer, as a task argument travels."""
    content_type, encoding, data = dumps(payload, serializer="json")
    return loads(data, content_type, encoding)


def test_every_field_survives_the_local_pipe_and_the_celery_payload(tmp_path: Path) -> None:
    req = full_request()
    item = WorkItem("job1", req, "jazz", "ab" * 32, str(tmp_path / "jobs" / "job1"), attempts=1)
    parent, child = mp.Pipe()
    parent.send(("jobs", [item.to_payload()]))
    _, [sent] = child.recv()
    assert WorkItem.from_payload(sent) == item
    through_celery = decode_item(celery_trip(encode_item(item)))
    assert through_celery.request == req and through_celery.out_dir == ""
    for got in (WorkItem.from_payload(sent).request, through_celery.request):
        assert got.parts == frozenset({"lead", "bass"})  # the option a hand-written dict once dropped
        assert got.seed_midi == SEED and got.changes == req.changes and got.changes_text == "Dm7 G7 | Cmaj7 | A7alt"
        assert (got.style, got.seconds, got.tempo, got.seed, got.temperature, got.audio_format) == \
            ("jazz", 65.0, 142.5, 2**62 + 7, 0.85, "flac")


def test_a_stored_job_gives_back_the_request_it_was_accepted_with() -> None:
    req = full_request()
    job = Job("j", 1, None, None, json.loads(json.dumps(req.to_payload())), "jazz", "jazz", "h")
    assert job.compose_request() == req
    legacy = Job("k", 1, None, None, {"style": "jazz", "seconds": 30.0, "tempo": None, "seed": 3, "temperature": None,
                                      "changes": "Dm7 G7", "format": "ogg"}, "jazz", "jazz", "h", seed_midi=SEED)
    old = legacy.compose_request()
    assert old.seed_midi == SEED and old.changes_text == "Dm7 G7" and old.seed == 3
    before_era = {k: v for k, v in req.to_payload().items() if k not in ("form", "key", "era")}
    assert ComposeRequest.from_payload(before_era).era is None  # a job stored before the era option still runs


@pytest.mark.parametrize("change, message", [
    ({"v": 2}, "version 2"),
    ({"colour": "blue"}, "unknown ['colour']"),
    ({"seconds": "30"}, "'seconds' is a str"),
    ({"seed": True}, "'seed' is a bool"),
    ({"parts": ["kazoo"]}, "parts must be some of"),
    ({"seed_midi": "not base64!"}, "not base64"),
    ({"changes": "Dm7 Xq7"}, "'Xq7'"),
])
def test_a_malformed_payload_is_refused_with_a_clear_line(change: dict, message: str) -> None:
    payload = {**full_request().to_payload(), **change}
    with pytest.raises(RequestError, match=message.replace("[", r"\[").replace("]", r"\]")):
        ComposeRequest.from_payload(payload)


def test_a_missing_key_is_refused() -> None:
    payload = full_request().to_payload()
    del payload["parts"]
    with pytest.raises(RequestError, match=r"missing \['parts'\]"):
        ComposeRequest.from_payload(payload)


def test_a_result_packs_for_the_trip_back_and_is_saved_with_its_summary(tmp_path: Path) -> None:
    result = ComposeResult(audio=b"OggS" + bytes(1000), audio_format="ogg", midi=b"MThd..", picture=b"\x89PNG..",
                           summary={"seed": 5, "tempo": 150.0, "changes": "Dm7 | G7"}, timings={"total": 1.25})
    assert ComposeResult.from_payload(json.loads(json.dumps(result.to_payload()))) == result
    packed = celery_trip(pack_result(result, {"node": "w1", "started_at": 1.0, "finished_at": 2.0}))
    summary = unpack_result(packed, tmp_path / "job")
    assert Path(summary["files"]["audio"]).read_bytes() == result.audio
    assert Path(summary["files"]["picture"]).read_bytes() == result.picture
    assert summary["worker"]["node"] == "w1" and summary["timings"] == {"total": 1.25} and summary["seed"] == 5
    assert json.loads((tmp_path / "job" / "summary.json").read_text()) == summary


def test_a_result_over_the_cap_is_refused(tmp_path: Path) -> None:
    big = ComposeResult(audio=bytes(policy.MAX_RESULT_BYTES + 1), audio_format="ogg", midi=b"", picture=b"", summary={})
    with pytest.raises(ValueError, match=r"at most \d+ MB"):
        pack_result(big, {})
    with pytest.raises(ValueError, match=r"at most \d+ MB"):
        policy.save_clip(tmp_path, big)
    forged = {"result": {**big.to_payload(), "audio": base64.b64encode(bytes(policy.MAX_RESULT_BYTES + 4)).decode()}}
    with pytest.raises(ValueError, match=r"over \d+ MB"):
        unpack_result(forged, tmp_path / "forged")
    assert not (tmp_path / "forged").exists()


def test_a_lead_sheet_comes_back_through_celery_as_files_beside_the_clip(tmp_path) -> None:
    packed = pack_sheet(b"<score-partwise/>", b"\x89PNG sheet", {"musicxml": 0.1}, {"node": "w1"})
    saved = unpack_result(json.loads(json.dumps(packed)), tmp_path / "jobs" / "abc")
    assert Path(saved["files"]["sheet"]).read_bytes() == b"\x89PNG sheet"
    assert Path(saved["files"]["musicxml"]).read_bytes() == b"<score-partwise/>"
    assert saved["timings"] == {"musicxml": 0.1}
