"""Hostile checkpoint archives against `bot.store.catalog.Catalog.install`, on a live event loop.

Each case runs in a fresh process and prints: time to the refusal (or the install), bytes and files
written under the checkpoints folder (a 3 GB watchdog aborts the run), the event loop's longest
stall (`bot.ui.app.LoopMonitor`, as ``/chorus-admin queue`` shows it), the worst wait of a
``catalog.styles()`` call made every 50 ms meanwhile (what ``/styles`` does), the peak memory of
the validator process, and the reply line.

Cases: ``zip-bomb`` (about 12 MB of zip unpacking to about 1 GB), ``tar-100k`` (a tar.gz of 100,000
empty files), ``big-config`` (a real checkpoint whose model_config says hidden 4096 x 4 layers),
``meta-types`` (a real checkpoint whose metrics.valid_nll is "n/a"; then ``describe()``).

With ``--e2e`` the same archives go through the real bot (``chorus serve`` against the Discord
stand-in, `tests.bot.harness.Harness`) as ``/chorus-admin install`` uploads, each with another
user's ``/styles`` fired right after it; it prints the time to the reply, the reply, when and how
``/styles`` was answered, and the bot's longest loop stall so far (from ``/chorus-admin queue``).

Usage: python bench/archive_install.py [--checkpoint checkpoints/folk] [--case NAME] [--e2e]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bot.store.catalog import Catalog  # noqa: E402
from bot.ui.app import LoopMonitor  # noqa: E402
from tests.bot.harness import exit_on_signals  # noqa: E402
from tests.helpers import deflated_zip, many_member_tgz, zip_bomb  # noqa: E402

CASES = ("zip-bomb", "tar-100k", "big-config", "meta-types")
WATCHDOG_BYTES = 3 * 10**9


def written_bytes() -> int:
    """Bytes this process has passed to write() so far (/proc/self/io wchar)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    return 0


def archive_for(case: str, ck: Path) -> tuple[bytes, str]:
    meta = json.loads((ck / "meta.json").read_text())
    weights = (ck / "model.safetensors").read_bytes()
    if case == "zip-bomb":
        return zip_bomb(meta=json.dumps(meta).encode()), "bomb.zip"
    if case == "tar-100k":
        return many_member_tgz(100_000), "many.tar.gz"
    if case == "big-config":
        meta["model_config"].update(hidden=4096, layers=4)
    else:
        meta["metrics"]["valid_nll"] = "n/a"
    return deflated_zip([("model.safetensors", weights), ("meta.json", json.dumps(meta).encode())]), f"{case}.zip"


async def run_case(case: str, ck: Path, root: Path) -> None:
    data, filename = archive_for(case, ck)
    catalog = Catalog(root, 64 * 1024 * 1024)
    opened: list[str] = []

    def audit(event: str, args: tuple) -> None:  # files opened for writing under the checkpoints folder
        if event == "open" and isinstance(args[0], str) and args[0].startswith(str(root)) and \
                (isinstance(args[1], str) and any(c in args[1] for c in "wax+")):
            opened.append(args[0])

    sys.addaudithook(audit)
    start_written = written_bytes()
    done = threading.Event()

    def watchdog() -> None:
        while not done.wait(0.05):
            if written_bytes() - start_written > WATCHDOG_BYTES:
                print(f"{case}: aborted, more than {WATCHDOG_BYTES:,} bytes written", flush=True)
                shutil.rmtree(root, ignore_errors=True)
                os._exit(3)

    threading.Thread(target=watchdog, daemon=True).start()
    monitor = LoopMonitor()
    monitor.start()
    worst_styles = 0.0
    loop = asyncio.get_running_loop()

    async def styles_call() -> None:
        catalog.styles()

    def styles_user() -> None:  # another user's /styles, from outside the loop as the gateway's would be
        nonlocal worst_styles
        while not done.wait(0.05):
            asked = time.perf_counter()
            asyncio.run_coroutine_threadsafe(styles_call(), loop).result()
            worst_styles = max(worst_styles, time.perf_counter() - asked)

    user = threading.Thread(target=styles_user, daemon=True)
    user.start()
    await asyncio.sleep(0.2)  # the monitor's first ticks
    started = time.perf_counter()
    try:
        installed = await catalog.install(data, filename, "bench")
        try:
            outcome = f"installed; describe(): {installed.describe()}"
        except Exception as exc:  # noqa: BLE001 - the figure is whether it raises
            outcome = f"installed; describe() raised {type(exc).__name__}: {exc}"
    except Exception as exc:  # noqa: BLE001 - any refusal, expected or not, is printed
        outcome = f"refused ({type(exc).__name__}): {exc}"
    elapsed = time.perf_counter() - started
    await asyncio.sleep(0.2)
    monitor.stop()
    done.set()
    await asyncio.to_thread(user.join)
    child_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB -> MiB
    print(f"{case}: {len(data) / 1e6:.1f} MB archive; {elapsed:.2f} s to the answer; "
          f"{written_bytes() - start_written:,} bytes written in {len(set(opened)):,} files; "
          f"longest loop stall {monitor.max_stall * 1000:.0f} ms; worst styles() wait {worst_styles * 1000:.0f} ms; "
          f"validator peak RSS {child_rss:.0f} MiB", flush=True)
    print(f"  {outcome[:300]}", flush=True)


def run_e2e(ck: Path, tmp: Path) -> None:
    from tests.bot.harness import Harness

    h = Harness(tmp, {"folk": ck})
    try:
        h.start_bot()

        def stall() -> str:
            rec = h.admin_command(h.admin, "queue")
            text = h.wait(interaction=rec, kind="callback")["json"]["data"]["content"]
            return next((line for line in text.splitlines() if "stall" in line), "no stall line")

        print(f"e2e after start: {stall()}", flush=True)
        for case in CASES:
            data, filename = archive_for(case, ck)
            att = h.standin.add_attachment(filename, data)
            rec = h.admin_command(h.admin, "install", attachments={"archive": att})
            probes, reply, deadline = [], None, time.monotonic() + 300
            while reply is None and time.monotonic() < deadline:  # another user's /styles every ~0.1 s
                probes.append(h.lt.run(h.standin.send_slash_command("styles", [], h.users[0])))
                try:
                    reply = h.wait(timeout=0.1, interaction=rec, kind="followup")
                except TimeoutError:
                    continue
            answers = [h.wait(timeout=60, interaction=p, kind="callback") for p in probes]
            worst = max(a["time"] - p.sent_at for a, p in zip(answers, probes, strict=True))
            refused = sum(a["status"] != 200 for a in answers)
            after = h.lt.run(h.standin.send_slash_command("styles", [], h.users[1]))
            after_text = (h.wait(timeout=60, interaction=after, kind="callback")["json"]["data"] or {}).get("content", "")
            print(f"e2e {case}: {len(data) / 1e6:.1f} MB; {reply['time'] - rec.sent_at:.2f} s to the reply; "
                  f"{len(probes)} /styles meanwhile, slowest answered after {worst:.2f} s, {refused} not accepted; "
                  f"{stall()}", flush=True)
            print(f"  reply: {(reply['json'] or {}).get('content', '')[:300]}", flush=True)
            listing = h.admin_command(h.admin, "checkpoints")
            listed = (h.wait(timeout=60, interaction=listing, kind="callback")["json"]["data"] or {}).get("content", "")
            print(f"  /styles after it: {after_text.splitlines()[0][:120] if after_text else '?'}", flush=True)
            print(f"  /chorus-admin checkpoints after it: {' | '.join(listed.splitlines())[:240]}", flush=True)
    finally:
        h.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--checkpoint", type=Path, default=Path("checkpoints/folk"))
    ap.add_argument("--case", choices=CASES)
    ap.add_argument("--e2e", action="store_true", help="through the real bot and the Discord stand-in")
    args = ap.parse_args()
    exit_on_signals()  # SIGTERM ends it as Ctrl-C does: what it started is stopped
    free = shutil.disk_usage(tempfile.gettempdir()).free
    if free < 2 * WATCHDOG_BYTES:
        sys.exit(f"only {free / 1e9:.1f} GB free in {tempfile.gettempdir()}; want {2 * WATCHDOG_BYTES / 1e9:.0f} GB")
    if args.e2e:
        with tempfile.TemporaryDirectory() as tmp:
            run_e2e(args.checkpoint.resolve(), Path(tmp))
        return
    if args.case is None:  # each case in a fresh process: its own memory figures and loop
        for case in CASES:
            subprocess.run([sys.executable, __file__, "--checkpoint", str(args.checkpoint), "--case", case], check=False)
        return
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run_case(args.case, args.checkpoint.resolve(), Path(tmp) / "checkpoints"))


if __name__ == "__main__":
    main()
