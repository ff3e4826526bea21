"""The seed reader: downloads capped by the bytes read, checks queued in a process pool on a CPU budget."""
from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from aiohttp import web

from bot.errors import SeedUploadError
from bot.service.seeds import SeedReader
from engine.formats.seed import SeedLimits, SeedMidiError, check_seed_midi
from tests.helpers import combo_midi, heavy_seed_midi

CAP = 100_000
TWENTY_MIB = 20 * 1024 * 1024


@asynccontextmanager
async def server(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> AsyncIterator[str]:
    """A local HTTP server answering every GET with ``handler``; yields its base URL."""
    app = web.Application()
    app.router.add_get("/{name}", handler)
    runner = web.AppRunner(app, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def reader(**kw) -> AsyncIterator[SeedReader]:
    r = SeedReader(SeedLimits(max_bytes=kw.pop("max_bytes", CAP), cpu_seconds=kw.pop("cpu_seconds", 3.0)), **kw)
    await r.start()
    try:
        yield r
    finally:
        await r.close()


def bytes_read(caplog: pytest.LogCaptureFixture) -> int:
    (n,) = [int(m) for r in caplog.records for m in re.findall(r"(\d+) bytes read", r.getMessage())]
    return n


def test_a_download_without_a_length_stops_one_byte_past_the_cap(caplog: pytest.LogCaptureFixture) -> None:
    served = []

    async def endless(request: web.Request) -> web.StreamResponse:  # chunked: no Content-Length to trust
        response = web.StreamResponse()
        await response.prepare(request)
        sent = 0
        try:
            while sent < TWENTY_MIB:
                await response.write(bytes(8192))
                sent += 8192
        except ConnectionError:
            pass
        served.append(sent)
        return response

    async def scenario() -> None:
        async with server(endless) as base, reader() as r:
            with pytest.raises(SeedUploadError, match=r"^the MIDI file is larger than 100,000 bytes, the most accepted$"):
                await r.download(f"{base}/big.mid")
            deadline = time.monotonic() + 10
            while not served and time.monotonic() < deadline:
                await asyncio.sleep(0.01)

    caplog.set_level(logging.INFO, logger="bot.service.seeds")
    asyncio.run(scenario())
    assert bytes_read(caplog) == CAP + 1
    assert served and served[0] < TWENTY_MIB  # the reader hung up rather than drain the rest


def test_a_content_length_over_the_cap_is_refused_before_the_body(caplog: pytest.LogCaptureFixture) -> None:
    async def big(request: web.Request) -> web.Response:
        return web.Response(body=bytes(CAP + 10))

    async def scenario() -> None:
        async with server(big) as base, reader() as r:
            with pytest.raises(SeedUploadError, match=r"^the MIDI file is 100,010 bytes; at most 100,000 are accepted$"):
                await r.download(f"{base}/big.mid")

    caplog.set_level(logging.INFO, logger="bot.service.seeds")
    asyncio.run(scenario())
    assert bytes_read(caplog) == 0


def test_failed_and_slow_downloads_get_one_line() -> None:
    async def scenario() -> None:
        hold = asyncio.Event()

        async def handler(request: web.Request) -> web.Response:
            if request.match_info["name"] == "slow.mid":
                await hold.wait()
            return web.Response(status=404, text="Not Found")

        async with server(handler) as base, reader(download_timeout_s=0.3) as r:
            for name in ("gone.mid", "slow.mid"):
                with pytest.raises(SeedUploadError, match=r"^could not download the MIDI file; try again$"):
                    await r.download(f"{base}/{name}")
            hold.set()

    asyncio.run(scenario())


def test_uploads_in_flight_are_bounded_per_user_and_in_all() -> None:
    async def scenario() -> None:
        hold = asyncio.Event()
        started = asyncio.Event()

        async def stalled(request: web.Request) -> web.Response:
            started.set()
            await hold.wait()
            return web.Response(body=combo_midi())

        async with server(stalled) as base, reader(per_user=1, max_in_flight=2) as r:
            first = asyncio.create_task(r.read(f"{base}/a.mid", user_id=1))
            await asyncio.wait_for(started.wait(), 10)
            with pytest.raises(SeedUploadError, match=r"^your earlier MIDI files are still being read; wait for them$"):
                await r.read(f"{base}/b.mid", user_id=1)
            second = asyncio.create_task(r.read(f"{base}/c.mid", user_id=2))
            while r._in_flight.total() < 2:
                await asyncio.sleep(0.01)
            with pytest.raises(SeedUploadError, match=r"^too many MIDI files are being read right now"):
                await r.read(f"{base}/d.mid", user_id=3)
            hold.set()
            assert await first == await second == combo_midi()
            assert await r.read(f"{base}/e.mid", user_id=1) == combo_midi()  # the slots came back

    asyncio.run(scenario())


def test_a_refused_file_gets_its_reason_from_the_pool() -> None:
    async def scenario() -> None:
        async with reader() as r:
            with pytest.raises(SeedMidiError, match=r"^this is not a MIDI file$"):
                await r.check(b"\x89PNG\r\n\x1a\n" + bytes(100))
            with pytest.raises(SeedMidiError, match=r"^this MIDI file is damaged or truncated$"):
                await r.check(combo_midi()[:150])
            await r.check(combo_midi())

    asyncio.run(scenario())


def test_a_burst_queues_for_one_process_and_waiting_does_not_count_against_a_file() -> None:
    data = heavy_seed_midi(150_000)
    cold = check_seed_midi(data, SeedLimits(cpu_seconds=60))  # a first read costs the most CPU
    warm = min(check_seed_midi(data, SeedLimits(cpu_seconds=60)) for _ in range(2))
    budget = 2 * max(cold, warm)  # room for a cold pool process on a loaded machine
    files = max(4, math.ceil(1.5 * budget / warm) + 1)  # together they take longer than one's budget

    async def scenario() -> float:
        async with reader(max_bytes=len(data), cpu_seconds=budget, workers=1) as r:
            start = time.monotonic()
            await asyncio.gather(*[r.check(data) for _ in range(files)])  # each within its budget
            return time.monotonic() - start

    assert asyncio.run(scenario()) > budget  # the last one waited longer than its budget
