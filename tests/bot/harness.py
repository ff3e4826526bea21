"""Runs the real bot process (``chorus serve``) against the Discord stand-in, for end-to-end tests.

The stand-in lives in an event loop on a background thread, so the test thread may block while
the stand-in keeps answering the bot within Discord's deadlines. A script that runs it
(``bench/bot_load.py``, ``bench/soak.py``) calls `exit_on_signals` first, so SIGTERM (``timeout``,
``kill``) ends it as Ctrl-C and a normal exit do: through its ``finally`` blocks, which stop the
bot's process group and whatever else it started.
"""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from tests.bot.standin import DiscordStandIn
from tests.bot.standin_components import buttons

WARM_LOG = "from a worker's warm clip"  # the bot's log line once the wait estimate is measured (bot.service.compose)


def exit_on_signals() -> None:
    """Turn SIGTERM, SIGHUP and SIGINT into `SystemExit` in the main thread, so every ``finally``
    runs (the bot's process group stopped, Celery workers and Redis closed); a second signal while
    that runs is ignored, so the clean-up is not cut short."""
    caught = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)

    def leave(signum: int, _frame: object) -> None:
        for sig in caught:
            signal.signal(sig, signal.SIG_IGN)
        raise SystemExit(128 + signum)

    for sig in caught:
        signal.signal(sig, leave)


def poll(check: Any, timeout: float = 60.0, what: str = "the condition") -> Any:
    """``check()`` once it is truthy, polled every 50 ms with a deadline.

    Raises:
        TimeoutError: it did not hold within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not hold within {timeout:.0f} s")
        time.sleep(0.05)
    return found


class LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="standin-loop", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 120.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


class Harness:
    """A stand-in, a checkpoints folder and a bot process started with the settings given."""

    def __init__(self, tmp: Path, checkpoints: dict[str, Path], **env: str) -> None:
        self.tmp = tmp
        self.lt = LoopThread()
        self.standin = DiscordStandIn()
        self.lt.run(self.standin.start())
        self.admin = self.standin.add_user("admin")
        self.users = [self.standin.add_user(f"user{i}") for i in range(6)]
        self.ckdir = tmp / "checkpoints"
        self.ckdir.mkdir(parents=True, exist_ok=True)
        for name, path in checkpoints.items():
            (self.ckdir / name).symlink_to(path)
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp),
            "DISCORD_TOKEN": self.standin.token, "CHORUS_DISCORD_API_BASE": self.standin.api_base,
            "CHORUS_DISCORD_GATEWAY": self.standin.gateway_url, "CHORUS_CHECKPOINTS_DIR": str(self.ckdir),
            "CHORUS_DB_PATH": str(tmp / "chorus.db"), "CHORUS_DATA_DIR": str(tmp / "data"),
            "CHORUS_ADMIN_USER_IDS": self.admin["id"], "CHORUS_DEV_GUILD_IDS": self.standin.guild_id,
            "CHORUS_USER_COOLDOWN_S": "0", "CHORUS_WORKERS": "1", "CHORUS_LOG_LEVEL": "INFO",
            # workers sample with the numpy twins (the same clips, without importing torch: each
            # start ~2 s sooner); test_e2e.py runs the default, torch, end to end
            "CHORUS_SAMPLER": "numpy",
            "PYTHONWARNINGS": "ignore", **env,
        }
        if "PYTHONPATH" in os.environ:  # the bot process runs this checkout's code, as the tests do
            # made absolute: the bot starts in ``tmp``, where a relative entry would name another folder
            paths = [str(Path(p).resolve()) for p in os.environ["PYTHONPATH"].split(os.pathsep) if p]
            self.env.setdefault("PYTHONPATH", os.pathsep.join(paths))
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.log = tmp / "bot.log"

    def start_bot(self, timeout: float = 90.0) -> None:
        self.starts += 1
        with self.log.open("ab") as fh:
            self.proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve"], cwd=self.tmp, env=self.env,
                                         stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        self.lt.run(self.standin.wait_until_connected(identifies=self.starts, timeout=timeout), timeout + 5)
        self.lt.run(self.standin.wait_for(kind="commands", count=self.starts, timeout=timeout), timeout + 5)
        self.wait_for_log("Chorus ready", count=self.starts, timeout=timeout)  # recovery done, housekeeping on

    def wait_for_log(self, text: str, count: int = 1, timeout: float = 60.0) -> None:
        """Wait until the bot's log holds ``text`` ``count`` times (polled, with a deadline).

        Raises:
            TimeoutError: it did not, or the bot exited first.
        """
        deadline = time.monotonic() + timeout
        while self.bot_log().count(text) < count:
            if self.proc is not None and self.proc.poll() is not None:
                raise TimeoutError(f"the bot exited ({self.proc.returncode}) before logging {text!r}:\n"
                                   + self.bot_log()[-3000:])
            if time.monotonic() > deadline:
                raise TimeoutError(f"the bot did not log {text!r} {count} times in {timeout:.0f} s")
            time.sleep(0.05)

    def kill_bot(self) -> None:
        """SIGKILL the bot and its worker processes, as a crash would."""
        if self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
            self.proc = None

    def stop_bot(self) -> None:
        if self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
            self.proc = None

    def close(self) -> None:
        self.stop_bot()
        self.lt.run(self.standin.stop())
        self.lt.close()

    # -- acting as users -----------------------------------------------------------------------

    def compose(self, user: dict, style: str = "jazz", length: str = "10s", attachment: tuple[str, bytes] | None = None,
                **options: Any):
        opts = [{"name": "style", "value": style}, {"name": "length", "value": length}]
        opts += [{"name": k, "value": v} for k, v in options.items()]
        atts = None
        if attachment is not None:
            atts = {"seed_midi": self.standin.add_attachment(*attachment)}
        return self.lt.run(self.standin.send_slash_command("compose", opts, user, attachments=atts))

    def admin_command(self, user: dict, sub: str, attachments: dict | None = None, **options: Any):
        opts = [{"name": k, "value": v} for k, v in options.items()]
        return self.lt.run(self.standin.send_slash_command("chorus-admin", opts, user, group=sub, attachments=attachments))

    def wait(self, timeout: float = 60.0, **match: Any) -> dict:
        return self.lt.run(self.standin.wait_for(timeout=timeout, **match), timeout + 5)

    def clip_of(self, rec, timeout: float = 90.0) -> dict:
        """The request (an edit of the status message, or a follow-up) that carried the clip's files."""
        return self.wait(timeout, interaction=rec, predicate=lambda e: e["kind"] in ("edit", "followup")
                         and len(e["files"]) >= 3)

    def clips_seen(self, rec) -> int:
        """How many clips the user sees for an interaction now (messages carrying the three files)."""
        return sum(1 for m in self.standin.messages_for(rec) if len(m.get("attachments", [])) >= 3)

    def responses(self, rec) -> list[dict]:
        return self.standin.responses_for(rec)

    def bot_log(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def ephemeral_text(h: Harness, rec: Any) -> str:
    """The private one-line answer: an ephemeral reply, or after a public "thinking" defer (a
    seeded /compose) an ephemeral follow-up, the loading message deleted first."""
    e = h.wait(interaction=rec, kind="callback")
    data = e["json"].get("data", {})
    if e["json"]["type"] == 5:
        data = h.wait(interaction=rec, kind="followup")["json"]
        assert [m["flags"] & 64 for m in h.standin.messages_for(rec)] == [64], "the loading message is left"
    assert data.get("flags", 0) & 64, f"not ephemeral: {data}"
    return data.get("content", "")


def clip_message(h: Harness, rec: Any) -> dict:
    """The message a user sees carrying the clip of ``rec``."""
    h.clip_of(rec)
    (message,) = [m for m in h.standin.messages_for(rec) if len(m["attachments"]) >= 3]
    return message


def press(h: Harness, message: dict, label: str, user: dict) -> Any:
    """``user`` presses the button ``label`` under ``message``; the interaction's record."""
    return h.lt.run(h.standin.send_component(message, buttons(h.standin.messages[message["id"]])[label]["custom_id"],
                                             user))


def sheet_files(h: Harness, rec: Any) -> dict[str, bytes]:
    """The files of the reply that carried a clip's lead sheet (a Sheet press), by extension."""
    event = h.wait(120.0, interaction=rec, predicate=lambda e: e["kind"] in ("followup", "edit") and len(e["files"]) == 2)
    return {f["filename"].rsplit(".", 1)[1]: f["data"] for f in event["files"]}
