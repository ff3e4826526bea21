"""`bot.memory`: large freed buffers leave the process."""
from __future__ import annotations

import subprocess
import sys

from tests.helpers import REPO

CHURN = """
import base64, json, os, sys
from concurrent.futures import ThreadPoolExecutor
from bot.memory import return_large_buffers

def rss():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS")) / 1024

if sys.argv[1] == "on":
    assert return_large_buffers()
sizes = [300_000, 800_000, 1_500_000, 3_000_000, 6_000_000]

def one(i):  # what the bot does with a Celery result: parse the JSON, decode the clip's base64
    raw = json.dumps({"audio": base64.b64encode(os.urandom(sizes[i % 5])).decode()}).encode()
    return len(base64.b64decode(json.loads(raw)["audio"]))

with ThreadPoolExecutor(4) as pool:
    list(pool.map(one, range(4)))
    start = rss()
    list(pool.map(one, range(80)))
print(rss() - start)
"""


def test_the_bot_gives_large_freed_buffers_back_so_its_rss_keeps_no_high_water_mark() -> None:
    def growth(mode: str) -> float:
        out = subprocess.run([sys.executable, "-c", CHURN, mode], cwd=REPO, capture_output=True, text=True,
                             timeout=120, check=True)
        return float(out.stdout.split()[-1])

    off, on = growth("off"), growth("on")
    assert on < 4 and off > 12, (on, off)  # MiB kept after 80 results of 0.3-6 MB, four threads at once
