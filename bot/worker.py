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


def run_job(composer: Any, settings: Any, item: Any, progress) -> dict[str, Any]:
    """Compose one job and write ``clip.<fmt>``, ``clip.mid`` and ``clip.png`` into its folder.

    Returns the summary with the file paths and timings. Raises EngineError for a user-facing
    failure (bad seed file, broken checkpoint).
    """
    from engine.request import ComposeRequest

    r = item.request
    req = ComposeRequest.build(r["style"], r["seconds"], settings, [r["style"]], tempo=r.get("tempo"),
                               seed=r.get("seed"), temperature=r.get("temperature"), changes=r.get("changes"),
                               seed_midi=item.seed_midi, audio_format=r.get("format", "ogg"))
    path = Path(settings.checkpoints_dir) / item.checkpoint
    result = composer.compose(req, checkpoint=path, progress=progress)
    if result.summary.get("checkpoint_hash") and not item.checkpoint_hash.startswith(result.summary["checkpoint_hash"]):
        log.warning("job %s: checkpoint %s changed since the job was accepted", item.job_id, item.checkpoint)
    out = Path(item.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"audio": out / f"clip.{result.audio_format}", "midi": out / "clip.mid", "picture": out / "clip.png"}
    files["audio"].write_bytes(result.audio)
    files["midi"].write_bytes(result.midi)
    files["picture"].write_bytes(result.picture)
    summary = {**result.summary, "timings": result.timings, "files": {k: str(v) for k, v in files.items()}}
    (out / "summary.json").write_text(json.dumps(summary))
    return summary


def worker_main(conn: Any, settings: Any) -> None:
    """Serve jobs from the pipe until it sends None or closes."""
    from engine.compose import Composer
    from engine.errors import EngineError

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
        _, item = msg

        def progress(stage: str, job_id: str = item.job_id) -> None:
            conn.send(("progress", job_id, stage))

        try:
            summary = run_job(composer, settings, item, progress)
            conn.send(("done", item.job_id, summary))
        except EngineError as exc:
            conn.send(("error", item.job_id, str(exc)))
        except Exception:  # a bug: report it in one line to the user, log the traceback here
            log.error("job %s failed:\n%s", item.job_id, traceback.format_exc())
            conn.send(("error", item.job_id, "an internal error stopped this request (it has been logged)"))
