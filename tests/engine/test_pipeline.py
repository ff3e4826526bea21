"""The worker pipeline and streamed encoding: same clips as composing one at a time, byte for byte.

The device tests run on every device present: the CPU always, CUDA where torch sees a GPU (so the
same code path runs here on the CPU and on a GPU machine).
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from engine.compose.composer import Composer
from engine.compose.pipeline import Pipeline
from engine.compose.request import ComposeRequest
from engine.compose.result import ComposeResult
from engine.errors import EngineError, Stopped
from engine.settings import Settings
from tests.helpers import REPO, run_chorus

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def build(length: str = "8s", **kw) -> ComposeRequest:
    return ComposeRequest.build("jazz", length, Settings(), ["jazz"], **kw)


def settings() -> Settings:
    # The default two synth threads (the drums beside the band): the byte-for-byte comparisons below
    # hold on them too. FluidSynth's own parallel mixing (synth.cpu-cores 2, once the default) did not
    # render one MIDI alike (about one render in two of a lead+bass stem differed, by up to 17% of full
    # scale), and stays off.
    return Settings.from_env(environ={"CHORUS_SYNTH_THREADS": "2"}, dotenv=None)


def same_audio(a: bytes, b: bytes) -> bool:
    """Equal bytes, but for what ffmpeg's Ogg muxer draws at random on every run (even for the
    same input): each page's stream serial number and the CRC over it."""
    if a[:4] != b"OggS":
        return a == b
    pages = []
    for data in (a, b):
        out, i = bytearray(data), 0
        while i < len(out):
            if out[i:i + 4] != b"OggS":
                return False
            segments = out[i + 26]
            size = 27 + segments + sum(out[i + 27:i + 27 + segments])
            out[i + 14:i + 18] = out[i + 22:i + 26] = b"\0\0\0\0"
            i += size
        pages.append(bytes(out))
    return pages[0] == pages[1]


@pytest.fixture(scope="module")
def unstreamed() -> Composer:
    return Composer(settings(), device="cpu", stream_audio=False)


@pytest.mark.parametrize("fmt, parts", [("ogg", None), ("mp3", None), ("flac", {"lead", "bass"})])
def test_streamed_audio_is_the_render_then_encode_audio(unstreamed: Composer, tiny_checkpoint: Path, fmt, parts) -> None:
    streamed = Composer(settings(), device="cpu")
    extra = {} if parts is None else {"parts": parts}
    req = build(seed=31, tempo=150, audio_format=fmt, **extra)
    new = streamed.compose(req, checkpoint=tiny_checkpoint)
    old = unstreamed.compose(req, checkpoint=tiny_checkpoint)
    assert new.midi == old.midi and new.picture == old.picture
    assert same_audio(new.audio, old.audio)


@pytest.mark.parametrize("device", DEVICES)
def test_the_pipeline_delivers_each_job_once_in_order_as_composed_alone(
        unstreamed: Composer, tiny_checkpoint: Path, device: str) -> None:
    composer = Composer(settings(), device=device)
    batches = [[(build(seed=41, tempo=150), tiny_checkpoint, None),
                (build(seed=5, seed_midi=b"MThd" + b"\0" * 30), tiny_checkpoint, None)],
               [(build(seed=42, tempo=140), tiny_checkpoint, None), (build(seed=43, tempo=130), tiny_checkpoint, None)]]
    got: list[tuple[int, int, object]] = []
    sampled: list[int] = []
    done = threading.Event()

    def deliver_to(batch: int):
        def deliver(index: int, outcome: object) -> None:
            got.append((batch, index, outcome))
            if len(got) == 4:
                done.set()
        return deliver

    with Pipeline(composer) as pipeline:
        for n, jobs in enumerate(batches):
            pipeline.submit(jobs, deliver_to(n), sampled=lambda n=n: sampled.append(n))
        assert done.wait(300)
    assert [(b, i) for b, i, _ in got] == [(0, 0), (0, 1), (1, 0), (1, 1)] and sampled == [0, 1]
    assert isinstance(got[1][2], EngineError)
    alone = Composer(settings(), device=device)
    for (b, i, outcome) in (got[0], got[2], got[3]):
        req = batches[b][i][0]
        assert isinstance(outcome, ComposeResult)
        again = alone.compose(req, checkpoint=tiny_checkpoint)
        assert outcome.midi == again.midi  # the seed decides, whatever ran alongside
        if device == "cpu":  # the MIDI (and so the audio) is the CPU's: the old path gives the same bytes
            assert same_audio(outcome.audio, unstreamed.compose(req, checkpoint=tiny_checkpoint).audio)
        assert outcome.summary["seconds"] > 8 and {"sample", "render", "encode", "total"} <= outcome.timings.keys()


def test_a_stopped_batch_is_given_up_mid_render_and_the_next_batch_composes(tiny_checkpoint: Path) -> None:
    stop = threading.Event()
    got: dict[str, list] = {"stopped": [], "next": []}
    finished = threading.Semaphore(0)

    def on_stage(stage: str) -> None:
        if stage == "rendering":  # the batch's time limit passes while its long clip renders
            stop.set()

    with Pipeline(Composer(settings(), device="cpu")) as pipeline:
        pipeline.submit([(build("180s", seed=7, tempo=200), tiny_checkpoint, on_stage),
                         (build(seed=8), tiny_checkpoint, None)],
                        lambda i, o: (got["stopped"].append(o), finished.release()), stop=stop)
        pipeline.submit([(build(seed=9), tiny_checkpoint, None)],
                        lambda i, o: (got["next"].append(o), finished.release()))
        for _ in range(3):
            assert finished.acquire(timeout=60)
    assert [type(o) for o in got["stopped"]] == [Stopped, Stopped]
    [after] = got["next"]
    assert isinstance(after, ComposeResult) and after.summary["seed"] == 9


def test_a_jobs_own_stop_gives_up_that_job_alone_mid_render(tiny_checkpoint: Path) -> None:
    """An admin's cancel: the first job's own event is set while it renders; it is delivered
    `Stopped` and the second job of its batch its clip."""
    mine = threading.Event()
    got: list = []
    finished = threading.Semaphore(0)

    def on_stage(stage: str) -> None:
        if stage == "rendering":
            mine.set()

    with Pipeline(Composer(settings(), device="cpu")) as pipeline:
        pipeline.submit([(build("180s", seed=7, tempo=200), tiny_checkpoint, on_stage),
                         (build(seed=8), tiny_checkpoint, None)],
                        lambda i, o: (got.append(o), finished.release()), stops=[mine, None])
        for _ in range(2):
            assert finished.acquire(timeout=60)
        with pytest.raises(EngineError, match="2 stop events for 1 jobs"):
            pipeline.submit([(build(seed=1), tiny_checkpoint, None)], lambda i, o: None, stops=[None, None])
    assert isinstance(got[0], Stopped)
    assert isinstance(got[1], ComposeResult) and got[1].summary["seed"] == 8


def test_a_closed_pipeline_refuses_jobs(tiny_checkpoint: Path) -> None:
    pipeline = Pipeline(Composer(settings(), device="cpu"))
    pipeline.close()
    with pytest.raises(EngineError, match="closed"):
        pipeline.submit([(build(seed=1), tiny_checkpoint, None)], lambda i, o: None)


@pytest.mark.parametrize("device", DEVICES)
def test_cli_compose_on_each_device(tiny_checkpoint: Path, tmp_path: Path, device: str) -> None:
    out = subprocess.run([sys.executable, "-m", "bot.cli", "compose", "jazz", "8s", "--checkpoint", str(tiny_checkpoint),
                          "--seed", "7", "--device", device, "--out", str(tmp_path), "--json"],
                         capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert Path(summary["audio"]).stat().st_size > 1000 and summary["seconds"] > 8


@pytest.mark.parametrize("device, message", [("tpu", "device must be auto, cpu, cuda or cuda:N")]
                         + ([] if torch.cuda.is_available() else [("cuda", "no CUDA GPU")]))
def test_cli_bad_device_gets_one_line(tiny_checkpoint: Path, tmp_path: Path, device: str, message: str) -> None:
    out = run_chorus("compose", "jazz", "8s", "--checkpoint", str(tiny_checkpoint), "--device", device, "--out",
                     str(tmp_path), cwd=REPO)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr
