"""Seed MIDI uploads: a capped download and a check in a small process pool, off the event loop.

`SeedReader.read` downloads an upload with a cap on the bytes actually read (an attachment's
declared size and a ``Content-Length`` can both lie), then checks it with
`engine.formats.seed.check_seed_midi` in a pool of ``workers`` processes. A semaphore in front of the
pool makes a burst queue rather than pile up, and the check's budget is CPU time
(`engine.formats.seed.SeedLimits.cpu_seconds`), so waiting in that queue never counts against a file.
At most ``max_in_flight`` uploads are read at once, and ``per_user`` per user.
"""
from __future__ import annotations

import asyncio
import logging
import multiprocessing as mp
from collections import Counter
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import asynccontextmanager

import aiohttp

from bot.errors import SeedUploadError
from engine.formats.seed import SeedLimits, check_seed_midi

log = logging.getLogger(__name__)

CHUNK_BYTES = 64 * 1024  # read size while downloading
COULD_NOT_DOWNLOAD = "could not download the MIDI file; try again"
COULD_NOT_CHECK = "could not read the MIDI file just now; try again"
BUSY = "too many MIDI files are being read right now; try again in a minute"
# A tiny valid file: the pool's processes start (spawn, imports) before the first upload needs them.
WARM_UP = (b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x01\xe0MTrk\x00\x00\x00\x0d"
           b"\x00\x90\x3c\x50\x83\x60\x80\x3c\x00\x00\xff\x2f\x00")


def too_large(limit: int, size: int | None = None) -> SeedUploadError:
    if size is None:
        return SeedUploadError(f"the MIDI file is larger than {limit:,} bytes, the most accepted")
    return SeedUploadError(f"the MIDI file is {size:,} bytes; at most {limit:,} are accepted")


class SeedReader:
    """Downloads and checks seed uploads; `start` before use, `close` after.

    Args:
        limits: what a file may cost; ``limits.max_bytes`` also caps the download.
        workers: processes checking files (each check is pure Python and CPU-bound).
        max_in_flight: uploads being read at once (downloading, queued or checking).
        per_user: uploads one user may have in flight.
        download_timeout_s: wall-clock seconds for one download.
        check_timeout_s: wall-clock seconds for one check once a process is free: a backstop
            only; the CPU budget in ``limits`` ends a slow file first.
    """

    def __init__(self, limits: SeedLimits, workers: int = 1, max_in_flight: int = 50, per_user: int = 2,
                 download_timeout_s: float = 10.0, check_timeout_s: float = 30.0) -> None:
        self.limits = limits
        self.workers = workers
        self.max_in_flight = max_in_flight
        self.per_user = per_user
        self.download_timeout_s = download_timeout_s
        self.check_timeout_s = check_timeout_s
        self._in_flight: Counter[int] = Counter()  # user id -> uploads being read
        self._free = asyncio.Semaphore(workers)  # a process is free to check a file
        self._session: aiohttp.ClientSession | None = None
        self._pool: ProcessPoolExecutor | None = None

    async def start(self) -> None:
        """Open the HTTP session and start the pool's processes (about a second, once)."""
        self._session = aiohttp.ClientSession()
        self._pool = self._new_pool()
        await asyncio.gather(*[self.check(WARM_UP) for _ in range(self.workers)])

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def _new_pool(self) -> ProcessPoolExecutor:
        # spawn, as the job workers: the bot process has threads and a running event loop to not fork
        return ProcessPoolExecutor(max_workers=self.workers, mp_context=mp.get_context("spawn"))

    def check_declared_size(self, size: int) -> None:
        """Refuse at once an upload whose declared size is over the limit (no download needed).

        Raises:
            SeedUploadError: it is.
        """
        if size > self.limits.max_bytes:
            raise too_large(self.limits.max_bytes, size)

    async def read(self, url: str, user_id: int) -> bytes:
        """Download the upload at ``url`` and check it; returns its bytes.

        Raises:
            SeedUploadError: too many uploads in flight, too large, or not downloadable.
            engine.formats.seed.SeedMidiError: the file was refused, with the reason.
        """
        async with self._slot(user_id):
            data = await self.download(url)
            await self.check(data)
            return data

    @asynccontextmanager
    async def _slot(self, user_id: int) -> AsyncIterator[None]:
        if self._in_flight[user_id] >= self.per_user:
            raise SeedUploadError("your earlier MIDI files are still being read; wait for them")
        if self._in_flight.total() >= self.max_in_flight:
            raise SeedUploadError(BUSY)
        self._in_flight[user_id] += 1
        try:
            yield
        finally:
            self._in_flight[user_id] -= 1
            if not self._in_flight[user_id]:
                del self._in_flight[user_id]

    async def download(self, url: str) -> bytes:
        """The bytes at ``url``; never reads more than ``limits.max_bytes`` + 1 of them.

        Raises:
            SeedUploadError: larger than the limit, or the download failed or took too long.
        """
        if self._session is None:
            raise RuntimeError("SeedReader.start() was not called")
        cap = self.limits.max_bytes
        data = bytearray()
        try:
            async with asyncio.timeout(self.download_timeout_s), self._session.get(url) as resp:
                if resp.status != 200:
                    log.info("seed download refused: HTTP %d", resp.status)
                    raise SeedUploadError(COULD_NOT_DOWNLOAD)
                if resp.content_length is not None and resp.content_length > cap:
                    resp.close()  # drop the connection rather than drain the body
                    log.info("seed download refused: Content-Length %d, 0 bytes read", resp.content_length)
                    raise too_large(cap, resp.content_length)
                while len(data) <= cap and (chunk := await resp.content.read(min(CHUNK_BYTES, cap + 1 - len(data)))):
                    data += chunk
                if len(data) > cap:
                    resp.close()
                    log.info("seed download refused: over %d bytes, %d bytes read", cap, len(data))
                    raise too_large(cap)
        except (TimeoutError, aiohttp.ClientError) as exc:
            log.info("seed download failed after %d bytes: %r", len(data), exc)
            raise SeedUploadError(COULD_NOT_DOWNLOAD) from exc
        return bytes(data)

    async def check(self, data: bytes) -> None:
        """Check ``data`` in the pool, queueing behind the checks already running.

        Raises:
            engine.formats.seed.SeedMidiError: the file was refused, with the reason.
            SeedUploadError: the pool failed or the check passed its wall-clock backstop.
        """
        if self._pool is None:
            raise RuntimeError("SeedReader.start() was not called")
        async with self._free:
            pool = self._pool
            try:
                future = asyncio.wrap_future(pool.submit(check_seed_midi, data, self.limits))
                cpu = await asyncio.wait_for(future, self.check_timeout_s)
            except TimeoutError as exc:
                log.warning("a seed check passed its %.0f s backstop", self.check_timeout_s)
                raise SeedUploadError(COULD_NOT_CHECK) from exc
            except BrokenProcessPool as exc:  # a process died (killed, out of memory): start afresh
                log.error("the seed check pool broke; starting a new one")
                if self._pool is pool:
                    self._pool = self._new_pool()
                    pool.shutdown(wait=False, cancel_futures=True)
                raise SeedUploadError(COULD_NOT_CHECK) from exc
        log.debug("seed of %d bytes checked in %.2f CPU s", len(data), cpu)
