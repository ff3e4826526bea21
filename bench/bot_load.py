"""Load on the whole bot: N concurrent /compose requests through the local Discord stand-in.

Starts the real bot process (``chorus serve``, local worker queue) against the stand-in, fires N
requests from N users at once (once the worker has timed its warm clip, as a bot a minute old has),
and prints how many were refused (with the line they read), time to acknowledgement (median, max; Discord allows
3 s), time to delivery (median, p95), clips per minute, and the event loop's longest stall
(measured inside the bot).

``--seed-burst`` instead has 20 users (``--requests``) upload the same event-heavy 360 KB seed
MIDI file at once and prints when each request was acknowledged (every callback the bot sent,
in time or not), when each user got their answer (queued or refused) and the loop's longest stall;
it does not wait for the clips.

SIGTERM (``timeout``) and Ctrl-C end it as a normal exit does: the bot and its workers are stopped.

Usage: python bench/bot_load.py [--requests 50] [--length 10s] [--checkpoint checkpoints/jazz] [--workers 1]
       python bench/bot_load.py --seed-burst [--requests 20] [--seed-workers 1]
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
from tests.bot.harness import WARM_LOG, Harness, exit_on_signals  # noqa: E402
from tests.helpers import heavy_seed_midi  # noqa: E402

ACK_LIMIT_S = 3.0  # Discord's deadline for the first callback


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def longest_stall(log: str) -> str:
    stall = re.findall(r"event loop longest stall: ([\d.]+) ms", log)
    return stall[-1] if stall else "?"


def answer(event: dict) -> bool:
    """Whether a recorded request is the user's answer: a message, the queued edit, or a follow-up."""
    body = event["json"] or {}
    if event["status"] >= 300:  # e.g. a callback after Discord's deadline: the user never sees it
        return False
    if event["kind"] == "callback":
        return body.get("type") == 4
    return event["kind"] in ("edit", "followup") and bool(body.get("content"))


def seed_burst(args: argparse.Namespace) -> None:
    """``--seed-burst``: N users upload a heavy seed at the same moment; see the module docstring."""
    seed = heavy_seed_midi()
    with tempfile.TemporaryDirectory() as tmp:
        h = Harness(Path(tmp), {"jazz": args.checkpoint.resolve()}, CHORUS_USER_MAX_PENDING="5",
                    CHORUS_MAX_QUEUE=str(args.requests + 10), CHORUS_WORKERS=str(args.workers),
                    CHORUS_JOB_TIMEOUT_S="600", CHORUS_SEED_WORKERS=str(args.seed_workers))
        try:
            h.start_bot()
            users = [h.standin.add_user(f"seed{i}") for i in range(args.requests)]
            options = [{"name": "style", "value": "jazz"}, {"name": "length", "value": args.length}]

            async def fire():
                atts = [h.standin.add_attachment("heavy.mid", seed) for _ in users]
                return await asyncio.gather(*[h.standin.send_slash_command(
                    "compose", options, u, attachments={"seed_midi": a}) for u, a in zip(users, atts, strict=True)])

            recs = h.lt.run(fire())
            answers: list[tuple[float, str, bool]] = []
            deadline = time.monotonic() + 180  # for all the answers together
            for rec in recs:
                try:
                    e = h.wait(max(0.1, deadline - time.monotonic()), interaction=rec, predicate=answer)
                except TimeoutError:
                    continue
                body = e["json"]["data"] if e["kind"] == "callback" else e["json"]
                answers.append((e["time"] - rec.sent_at, body.get("content", ""), bool(body.get("flags", 0) & 64)))
            callbacks = [next((e for e in h.responses(r) if e["kind"] == "callback"), None) for r in recs]
        finally:
            h.stop_bot()
            log = h.bot_log()
            h.close()
    tried = sorted(e["time"] - r.sent_at for r, e in zip(recs, callbacks, strict=True) if e is not None)
    in_time = [r.ack_seconds for r in recs if r.ack_seconds is not None]
    print(f"{args.requests} users at once upload a {len(seed) // 1000} KB seed to /compose {args.length}, "
          f"{args.workers} worker process(es), {args.seed_workers} seed-check process(es), "
          f"checkpoint {args.checkpoint}")
    print(f"acknowledged      {len(in_time)}/{len(recs)} in time; callbacks sent {len(tried)}, "
          f"{sum(t > ACK_LIMIT_S for t in tried)} after {ACK_LIMIT_S * 1000:.0f} ms (refused 404)")
    if tried:
        print(f"ack times         median {statistics.median(tried) * 1000:.0f} ms, max {max(tried) * 1000:.0f} ms")
        print(f"ack times (all)   {' '.join(f'{t * 1000:.0f}' for t in tried)} ms")
    queued = [a for a in answers if a[1].startswith("⏳")]
    refused = sorted({a[1] for a in answers if not a[1].startswith("⏳")})
    print(f"answered          {len(answers)}/{len(recs)}: {len(queued)} queued, {len(answers) - len(queued)} refused "
          f"{refused}")
    if answers:
        waits = [a[0] for a in answers]
        print(f"time to answer    median {statistics.median(waits):.1f} s, max {max(waits):.1f} s")
    print(f"event loop stall  longest {longest_stall(log)} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--requests", type=int, default=None, help="requests (default 50; 20 with --seed-burst)")
    ap.add_argument("--length", default="10s")
    ap.add_argument("--checkpoint", type=Path, default=Path("checkpoints/jazz"))
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--seed-burst", action="store_true", help="the seed-upload burst scenario instead")
    ap.add_argument("--seed-workers", type=int, default=1, help="CHORUS_SEED_WORKERS for --seed-burst")
    args = ap.parse_args()
    exit_on_signals()
    if args.seed_burst:
        args.requests = args.requests or 20
        seed_burst(args)
        return
    args.requests = args.requests or 50
    with tempfile.TemporaryDirectory() as tmp:
        h = Harness(Path(tmp), {"jazz": args.checkpoint.resolve()}, CHORUS_USER_MAX_PENDING="5",
                    CHORUS_MAX_QUEUE=str(args.requests + 10), CHORUS_WORKERS=str(args.workers),
                    CHORUS_JOB_TIMEOUT_S="600")
        try:
            h.start_bot()
            h.wait_for_log(WARM_LOG, timeout=120)
            users = [h.standin.add_user(f"load{i}") for i in range(args.requests)]

            async def fire():
                return await asyncio.gather(*[h.standin.send_slash_command(
                    "compose", [{"name": "style", "value": "jazz"}, {"name": "length", "value": args.length}], u)
                    for u in users])

            t0 = time.monotonic()
            recs = h.lt.run(fire())
            delivered, refused = [], []
            for rec in recs:
                first = h.wait(60, interaction=rec, predicate=answer)
                body = first["json"]["data"] if first["kind"] == "callback" else first["json"]
                if body.get("flags", 0) & 64:  # a private line: refused, nothing queued
                    refused.append(body.get("content", ""))
                    continue
                e = h.clip_of(rec, timeout=1800)
                delivered.append((rec.sent_at, e["time"] - rec.sent_at))
            span = max((at + d for at, d in delivered), default=t0) - t0
            acks = [r.ack_seconds for r in recs if r.ack_seconds is not None]
        finally:
            h.stop_bot()
            log = h.bot_log()
            h.close()
    waits = [d for _, d in delivered]
    print(f"{args.requests} concurrent /compose {args.length} requests, {args.workers} worker process(es), "
          f"checkpoint {args.checkpoint}")
    print(f"acknowledged      {len(acks)}/{len(recs)}; median {statistics.median(acks) * 1000:.0f} ms, "
          f"max {max(acks) * 1000:.0f} ms (Discord allows 3000 ms)")
    print(f"refused           {len(refused)}/{len(recs)} {sorted(set(refused))}")
    if waits:
        print(f"delivered         {len(waits)}/{len(recs)}; median {statistics.median(waits):.1f} s, "
              f"p95 {pct(waits, 0.95):.1f} s")
        print(f"throughput        {len(waits) / span * 60:.1f} clips per minute")
    print(f"event loop stall  longest {longest_stall(log)} ms")


if __name__ == "__main__":
    main()
