"""A deployment's parts on this machine, for tests and benchmarks: a throwaway ``redis-server``
and ``chorus worker`` processes (`RedisServer`, `Workers`).

They live here, not under ``tests/``, because ``bench/workers.py`` runs them too. Nothing in the
bot's own process uses this module.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import redis

from bot.queues.celery.app import make_app
from bot.settings import BotSettings, Secret


def redis_binary() -> str:
    """The ``redis-server`` executable.

    Raises:
        RuntimeError: it is not installed (``make setup`` installs it).
    """
    path = shutil.which("redis-server") or ("/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None)
    if path is None:
        raise RuntimeError("redis-server is not installed: run `make setup` (it installs the redis-server package)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A throwaway redis-server on 127.0.0.1 without persistence; `stop` and `start` keep the port."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 10.0) -> None:
        log = (self.tmp / "redis.log").open("ab")
        self.proc = subprocess.Popen([redis_binary(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", str(self.tmp)], stdout=log, stderr=subprocess.STDOUT)
        client = redis.Redis.from_url(self.url, socket_connect_timeout=1)
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.ping()
                return
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"redis-server did not start on port {self.port}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)


class Workers:
    """`chorus worker` processes, each with its own (empty) checkpoints and data folders.

    ``env`` adds to (or overrides) the workers' environment, e.g. ``CHORUS_JOB_TIMEOUT_S``.
    """

    def __init__(self, tmp: Path, redis_url: str, job_timeout_s: float = 6, **env: str) -> None:
        self.tmp = tmp
        self.redis_url = redis_url
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp), "CHORUS_REDIS_URL": redis_url,
                    "CHORUS_JOB_TIMEOUT_S": f"{job_timeout_s:g}", "CHORUS_TORCH_THREADS": "1",
                    "CHORUS_LOG_LEVEL": "INFO", "PYTHONWARNINGS": "ignore", **env}
        if "PYTHONPATH" in os.environ:  # run this checkout's code, as the caller does
            self.env.setdefault("PYTHONPATH", os.environ["PYTHONPATH"])
        self.procs: list[subprocess.Popen] = []
        self.data_dirs: list[Path] = []

    def start(self, count: int = 1, timeout: float = 60.0) -> None:
        want = len(self.alive()) + count
        for _ in range(count):
            i = len(self.procs)
            ck, data = self.tmp / f"w{i}-checkpoints", self.tmp / f"w{i}-data"
            ck.mkdir(parents=True, exist_ok=True)
            self.data_dirs.append(data)
            env = {"CHORUS_CHECKPOINTS_DIR": str(ck), "CHORUS_DATA_DIR": str(data), **self.env}
            with (self.tmp / f"worker-{i}.log").open("ab") as log:
                self.procs.append(subprocess.Popen([sys.executable, "-m", "bot.cli", "worker", "--device", "cpu"],
                                                   cwd=self.tmp, env=env, stdout=log, stderr=subprocess.STDOUT))
        self.wait_ready(want, timeout)

    def wait_ready(self, count: int, timeout: float = 60.0) -> None:
        app = make_app(BotSettings(redis_url=Secret(self.redis_url)))
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    if len(app.control.ping(timeout=1.0)) >= count:
                        return
                except (OSError, redis.exceptions.RedisError):  # Redis restarted under us: ask again
                    time.sleep(0.2)
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{count} workers did not answer within {timeout:.0f} s:\n{self.logs()}")
        finally:
            app.close()

    def alive(self) -> list[subprocess.Popen]:
        return [p for p in self.procs if p.poll() is None]

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in sorted(self.tmp.glob("worker-*.log")))

    def close(self) -> None:
        for p in self.alive():
            p.terminate()
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
