"""Load on the whole bot: N concurrent /compose requests through the local Discord stand-in.

Starts the real bot process (``chorus serve``, local worker queue) against the stand-in, fires N
requests from N users at once, and prints time to acknowledgement (median, max; Discord allows
3 s), time to delivery (median, p95), clips per minute, and the event loop's longest stall
(measured inside the bot).

Usage: python bench/bot_load.py [--requests 50] [--length 10s] [--checkpoint checkpoints/jazz] [--workers 1]
"""
from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.bot.harness import Harness  # noqa: E402


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--requests", type=int, default=50)
    ap.add_argument("--length", default="10s")
    ap.add_argument("--checkpoint", type=Path, default=Path("checkpoints/jazz"))
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        h = Harness(Path(tmp), {"jazz": args.checkpoint.resolve()}, CHORUS_USER_MAX_PENDING="5",
                    CHORUS_MAX_QUEUE=str(args.requests + 10), CHORUS_WORKERS=str(args.workers),
                    CHORUS_JOB_TIMEOUT_S="600")
        try:
            h.start_bot()
            users = [h.standin.add_user(f"load{i}") for i in range(args.requests)]

            async def fire():
                return await asyncio.gather(*[h.standin.send_slash_command(
                    "compose", [{"name": "style", "value": "jazz"}, {"name": "length", "value": args.length}], u)
                    for u in users])

            t0 = time.monotonic()
            recs = h.lt.run(fire())
            delivered = []
            for rec in recs:
                e = h.clip_of(rec, timeout=1800)
                delivered.append(e["time"] - rec.sent_at)
            span = max(rec.sent_at + d for rec, d in zip(recs, delivered, strict=True)) - t0
            acks = [r.ack_seconds for r in recs if r.ack_seconds is not None]
        finally:
            h.stop_bot()
            log = h.bot_log()
            h.close()
    stall = re.findall(r"event loop longest stall: ([\d.]+) ms", log)
    print(f"{args.requests} concurrent /compose {args.length} requests, {args.workers} worker process(es), "
          f"checkpoint {args.checkpoint}")
    print(f"acknowledged      {len(acks)}/{len(recs)}; median {statistics.median(acks) * 1000:.0f} ms, "
          f"max {max(acks) * 1000:.0f} ms (Discord allows 3000 ms)")
    print(f"delivered         {len(delivered)}/{len(recs)}; median {statistics.median(delivered):.1f} s, "
          f"p95 {pct(delivered, 0.95):.1f} s")
    print(f"throughput        {len(delivered) / span * 60:.1f} clips per minute")
    print(f"event loop stall  longest {stall[-1] if stall else '?'} ms")


if __name__ == "__main__":
    main()
