"""The worker process of the local queue: loads checkpoints once, composes jobs, writes the files.

This module runs in a child process (spawned, so no CUDA state is forked); it imports the engine
only there, so the bot's own process never loads torch.
"""
from __future__ import annotations

import json
import logging
import signal
import traceback
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def build_request(settings: Any, item: Any) -> Any:
    """The engine request of a queued job (validated again: the worker trusts nothing)."""
    from engine.request import ComposeRequest

    r = item.request
    return ComposeRequest.build(r["style"], r["seconds"], settings, [r["style"]], tempo=r.get("tempo"),
                                seed=r.get("seed"), temperature=r.get("temperature"), changes=r.get("changes"),
                                seed_midi=item.seed_midi, audio_format=r.get("format", "ogg"))


def write_result(item: Any, result: Any) -> dict[str, Any]:
    """Write a finished clip into the job's folder; returns the summary with paths and timings."""
    out = Path(item.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"audio": out / f"clip.{result.audio_format}", "midi": out / "clip.mid", "picture": out / "clip.png"}
    files["audio"].write_bytes(result.audio)
    files["midi"].write_bytes(result.midi)
    files["picture"].write_bytes(result.picture)
    summary = {**result.summary, "timings": result.timings, "files": {k: str(v) for k, v in files.items()}}
    (out / "summary.json").write_text(json.dumps(summary))
    return summary


def run_job(composer: Any, settings: Any, item: Any, progress) -> dict[str, Any]:
    """Compose one job and write ``clip.<fmt>``, ``clip.mid`` and ``clip.png`` into its folder.

    Returns the summary with the file paths and timings. Raises EngineError for a user-facing
    failure (bad seed file, broken checkpoint).
    """
    req = build_request(settings, item)
    path = Path(settings.checkpoints_dir) / item.checkpoint
    result = composer.compose(req, checkpoint=path, progress=progress)
    if result.summary.get("checkpoint_hash") and not item.checkpoint_hash.startswith(result.summary["checkpoint_hash"]):
        log.warning("job %s: checkpoint %s changed since the job was accepted", item.job_id, item.checkpoint)
    return write_result(item, result)


def run_batch(composer: Any, settings: Any, items: list[Any], send) -> None:
    """Compose several jobs, their sampling batched; report each as soon as it is done."""
    from engine.errors import EngineError

    jobs, ready = [], []
    for item in items:
        def progress(stage: str, job_id: str = item.job_id) -> None:
            send(("progress", job_id, stage))

        try:
            jobs.append((build_request(settings, item), Path(settings.checkpoints_dir) / item.checkpoint, progress))
            ready.append(item)
        except EngineError as exc:
            send(("error", item.job_id, str(exc)))
    for item, outcome in zip(ready, composer.compose_many(jobs), strict=True):
        if isinstance(outcome, EngineError):
            send(("error", item.job_id, str(outcome)))
        else:
            send(("done", item.job_id, write_result(item, outcome)))


def worker_main(conn: Any, settings: Any) -> None:
    """Serve jobs from the pipe until it sends None or closes."""
    from engine.compose import Composer

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    logging.basicConfig(level=getattr(logging, settings.log_level, logging.INFO),
                        format="chorus-worker: %(levelname)s %(message)s")
    composer = Composer(settings)
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        if msg is None:
            return
        _, payload = msg
        items = payload if isinstance(payload, list) else [payload]
        try:
            run_batch(composer, settings, items, conn.send)
        except Exception:  # a bug: report it in one line to the users, log the traceback here
            log.error("jobs %s failed:\n%s", [i.job_id for i in items], traceback.format_exc())
            for item in items:
                conn.send(("error", item.job_id, "an internal error stopped this request (it has been logged)"))
