"""`bot.memory`: large freed buffers leave the process."""
from __future__ import annotations

import subprocess
import sys

from tests.helpers import REPO

# A decoded clip, then a small record kept after it (a job's summary), a dozen times, after one
# large buffer was freed: without the fixed threshold glibc serves the clips from the heap, and the
# kept records pin their freed pages in the process.
CHURN = """
import sys
from bot.memory import return_large_buffers

def rss():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS")) / 1024

if sys.argv[1] == "on":
    assert return_large_buffers()
first = bytearray(8_000_000)
del first
start, kept = rss(), []
for k in range(12):
    clip = bytearray(b"\\x01") * (5_000_000 + k * 200_000)
    kept.append(bytearray(b"\\x02") * 4_000)
    del clip
print(rss() - start)
"""


def test_the_bot_gives_large_freed_buffers_back_so_its_rss_keeps_no_high_water_mark() -> None:
    def growth(mode: str) -> float:
        out = subprocess.run([sys.executable, "-c", CHURN, mode], cwd=REPO, capture_output=True, text=True,
                             timeout=120, check=True)
        return float(out.stdout.split()[-1])

    off, on = growth("off"), growth("on")
    assert on < 2 and off > 8, (on, off)  # MiB kept after twelve 5-7 MB buffers (13.4 and 0.0 here)
