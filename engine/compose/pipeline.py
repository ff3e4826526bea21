"""A worker's pipeline: sampling the next batch overlaps rendering and encoding the previous one.

Three threads, one per stage, joined by FIFO queues::

    submit(batch) -> [sample] prepare, sample (CPU or GPU) -> [render] decode, arrange, MIDI, FluidSynth
                  -> [encode] loudness, ffmpeg (streamed), picture -> deliver(index, outcome)

While clip i is encoded, clip i+1 renders and the next batch samples: on two cores the three
mostly leave the GIL (torch's kernels, FluidSynth, the ffmpeg process, numpy), so a steady stream
of clips is finished at about the pace of its slowest stage instead of the sum of all three.

Each job is delivered exactly once, in submission order, on the encode thread: its
`ComposeResult`, the `EngineError` that stopped it, or (a bug) any other exception. One job's
failure does not stop the others. A batch submitted with a ``stop`` event is given up once it
is set: sampling ends at its next step, a render between two MIDI events, and every job of the
batch not yet finished is delivered `engine.errors.Stopped` (a Celery lane's time limit). A job's
own stop event (an admin's cancel) gives up that job alone, from its render on.
`Composer.compose_many` does not use this: it runs on its caller's thread.
"""
from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine.compose.composer import Composer
from engine.compose.plan import Progress
from engine.compose.request import ComposeRequest
from engine.compose.result import ComposeResult
from engine.errors import EngineError, Stopped

log = logging.getLogger(__name__)

Job = tuple[ComposeRequest, Path | None, Progress | None]
Outcome = ComposeResult | Exception
Deliver = Callable[[int, Outcome], None]
_STOP = object()


class Pipeline:
    """Sampling, rendering and encoding on their own threads; see the module's docstring.

    Args:
        composer: the worker's composer (checkpoints, settings, device); used only from these threads.

    Use as a context manager, or call `close`.
    """

    def __init__(self, composer: Composer) -> None:
        self.composer = composer
        self._to_sample: queue.Queue[Any] = queue.Queue()
        self._to_render: queue.Queue[Any] = queue.Queue()
        self._to_encode: queue.Queue[Any] = queue.Queue()
        self._threads = [threading.Thread(target=fn, name=f"chorus-{name}", daemon=True)
                         for name, fn in (("sample", self._sample_loop), ("render", self._render_loop),
                                          ("encode", self._encode_loop))]
        self._closed = False
        for t in self._threads:
            t.start()

    def submit(self, jobs: list[Job], deliver: Deliver, sampled: Callable[[], None] | None = None,
               stop: threading.Event | None = None, stops: list[threading.Event | None] | None = None) -> None:
        """Queue a batch; returns at once.

        Args:
            jobs: (request, checkpoint folder or None for the style's, progress callback or None).
            deliver: called once per job with (its index in ``jobs``, its outcome), in order, on the
                encode thread; an exception it raises is logged and the pipeline goes on.
            sampled: called (on the sampling thread) once the batch is sampled: the worker may
                take another batch.
            stop: once set, the batch's unfinished jobs are given up (delivered `Stopped`).
            stops: one event per job (or None): once set, that job alone is given up before or while
                it renders or encodes (its sampling is the batch's, and goes on for the others).

        Raises:
            EngineError: the pipeline is closed.
        """
        if self._closed:
            raise EngineError("the pipeline is closed")
        per_job = list(stops) if stops is not None else [None] * len(jobs)
        if len(per_job) != len(jobs):
            raise EngineError(f"{len(per_job)} stop events for {len(jobs)} jobs")
        self._to_sample.put((list(jobs), deliver, sampled, stop, per_job))

    def close(self, wait: bool = True) -> None:
        """Stop taking batches; with ``wait``, finish and deliver those already submitted first."""
        if self._closed:
            return
        self._closed = True
        self._to_sample.put(_STOP)
        if wait:
            for t in self._threads:
                t.join()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the three stages

    def _sample_loop(self) -> None:
        import torch

        torch.set_num_threads(self.composer.settings.torch_threads)  # per thread with some backends
        while (item := self._to_sample.get()) is not _STOP:
            jobs, deliver, sampled, stop, per_job = item
            released = 0
            try:
                for index, plan in self.composer.sampled(jobs, step=_checker(stop)):
                    self._to_render.put((deliver, index, plan, _either(stop, per_job[index])))
                    released = index + 1
            except Exception as exc:  # sampling failed: every job not yet sampled gets the error
                if not isinstance(exc, EngineError):
                    log.exception("sampling a batch of %d failed", len(jobs))
                for index in range(released, len(jobs)):
                    self._to_render.put((deliver, index, exc, stop))
            if sampled is not None:
                _call(sampled)
        self._to_render.put(_STOP)

    def _render_loop(self) -> None:
        from engine.compose.finish import render_stage

        while (item := self._to_render.get()) is not _STOP:
            deliver, index, plan, stop = item
            if not isinstance(plan, Exception):
                try:
                    if stop is not None and stop.is_set():
                        raise Stopped("the job was stopped")
                    plan = render_stage(self.composer.realise, self.composer.settings, plan, stream=self.composer.stream_audio, stop=stop)
                except Exception as exc:
                    plan = exc
            self._to_encode.put((deliver, index, plan, stop))
        self._to_encode.put(_STOP)

    def _encode_loop(self) -> None:
        from engine.compose.finish import encode_stage

        while (item := self._to_encode.get()) is not _STOP:
            deliver, index, rendered, stop = item
            outcome = rendered
            if not isinstance(rendered, Exception):
                try:
                    if stop is not None and stop.is_set():
                        if rendered.encoder is not None:
                            rendered.encoder.abort()
                        raise Stopped("the job was stopped")
                    outcome = encode_stage(rendered, stop=stop)
                except Exception as exc:
                    outcome = exc
            _call(deliver, index, outcome)


class _Either:
    """Set once either of two events is: a batch's stop (its time limit) or the job's own (a cancel)."""

    def __init__(self, first: threading.Event, second: threading.Event) -> None:
        self.first, self.second = first, second

    def is_set(self) -> bool:
        return self.first.is_set() or self.second.is_set()


def _either(batch: threading.Event | None, job: threading.Event | None) -> Any:
    """The stop a job's render and encode watch: the batch's, the job's, or both (None: neither)."""
    if batch is None or job is None:
        return batch or job
    return _Either(batch, job)


def _checker(stop: threading.Event | None) -> Callable[[int], None] | None:
    """A sampling step callback that raises `Stopped` once ``stop`` is set (None without one)."""
    if stop is None:
        return None

    def check(_step: int) -> None:
        if stop.is_set():
            raise Stopped("the job was stopped")

    return check


def _call(fn: Callable[..., None], *args: Any) -> None:
    """Call a caller's callback; what it raises is logged, never stops a stage."""
    try:
        fn(*args)
    except Exception:
        log.exception("a pipeline callback failed")
