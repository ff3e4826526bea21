"""``chorus serve`` failing clearly: a token Discord refuses is one line naming DISCORD_TOKEN, exit 2."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.bot.harness import LoopThread
from tests.bot.standin import DiscordStandIn
from tests.helpers import REPO


def test_a_wrong_token_is_one_line_naming_discord_token_and_exit_code_2(tmp_path: Path) -> None:
    lt = LoopThread()
    standin = DiscordStandIn()
    lt.run(standin.start())
    try:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "PYTHONPATH": str(REPO),
               "DISCORD_TOKEN": "not-the-token", "CHORUS_DISCORD_API_BASE": standin.api_base,
               "CHORUS_DISCORD_GATEWAY": standin.gateway_url, "CHORUS_CHECKPOINTS_DIR": str(REPO / "checkpoints"),
               "CHORUS_DB_PATH": str(tmp_path / "chorus.db"), "CHORUS_DATA_DIR": str(tmp_path / "data"),
               "CHORUS_LOG_LEVEL": "WARNING", "PYTHONWARNINGS": "ignore"}
        out = subprocess.run([sys.executable, "-m", "bot.cli", "serve"], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=120)
    finally:
        lt.run(standin.stop())
        lt.close()
    lines = (out.stdout + out.stderr).strip().splitlines()
    assert out.returncode == 2, lines
    assert "Traceback" not in out.stderr
    named = [line for line in lines if "DISCORD_TOKEN" in line]
    assert named == [lines[-1]] and lines[-1].startswith("chorus: error: DISCORD_TOKEN was refused"), lines


def test_discord_out_of_reach_is_one_line_and_exit_code_1_for_a_retry(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "PYTHONPATH": str(REPO),
           "DISCORD_TOKEN": "t", "CHORUS_DISCORD_API_BASE": f"http://127.0.0.1:{port}/api/v10",
           "CHORUS_CHECKPOINTS_DIR": str(REPO / "checkpoints"), "CHORUS_HOME": str(tmp_path),
           "CHORUS_LOG_LEVEL": "WARNING", "PYTHONWARNINGS": "ignore"}
    out = subprocess.run([sys.executable, "-m", "bot.cli", "serve"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=120)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 1, lines
    assert "Traceback" not in out.stderr
    assert lines[-1].startswith("chorus: error: cannot reach Discord's API"), lines



def test_a_stall_of_the_loop_dumps_every_threads_stack_while_it_lasts(capfd) -> None:
    import asyncio
    import time

    from bot.ui.app import LoopMonitor

    def blocking_call_on_the_loop() -> None:
        time.sleep(1.2)  # the bug being shown: blocking code run on the event loop (the dump comes at 0.25 s)

    async def go() -> float:
        monitor = LoopMonitor(report_s=30.0, dump_after=0.2)
        monitor.start()
        await asyncio.sleep(0.15)  # a few quiet ticks first
        blocking_call_on_the_loop()
        await asyncio.sleep(0.15)
        monitor.stop()
        return monitor.max_stall

    assert asyncio.run(go()) > 0.4
    err = capfd.readouterr().err
    assert "most recent call first" in err and "blocking_call_on_the_loop" in err
