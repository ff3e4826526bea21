"""Encode and decode the whole WJazzD training set with the grammar; print the time.

Usage: python bench/grammar.py [--corpus DIR] [--repeat N]
Target (issue 2): under 60 s on the 2-core CPU machine, reading excluded and included both shown.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from engine.music import grammar
from training.corpus import Source, read_sources


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    default = Path(os.environ.get("CHORUS_CORPUS_DIR", Path(__file__).resolve().parents[2] / "shared" / "corpus"))
    ap.add_argument("--corpus", type=Path, default=default)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    t0 = time.perf_counter()
    report = read_sources([Source(kind="wjazzd", path=args.corpus / "wjazzd")])
    read_s = time.perf_counter() - t0
    sheets = report.sheets
    notes = sum(s.note_count for s in sheets)
    enc_times, dec_times = [], []
    for _ in range(args.repeat):
        t = time.perf_counter()
        encoded = [grammar.encode(s) for s in sheets]
        enc_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        decoded = [grammar.decode(toks, seed=i) for i, toks in enumerate(encoded)]
        dec_times.append(time.perf_counter() - t)
    tokens = sum(len(t) for t in encoded)
    bars18 = [toks[: next((i for i, x in enumerate(toks) if x.startswith("BAR:") and
                            sum(1 for y in toks[:i] if y.startswith("BAR:")) == 18), len(toks))]
              for toks in encoded[:50]]
    t = time.perf_counter()
    for i, toks in enumerate(bars18):
        grammar.decode(toks, seed=i)
    per18 = (time.perf_counter() - t) / len(bars18)
    enc, dec = statistics.median(enc_times), statistics.median(dec_times)
    print(f"pieces {len(sheets)}  notes {notes}  tokens {tokens}  decoded notes {sum(len(d.notes) for d in decoded)}")
    print(f"read corpus            {read_s:8.2f} s")
    print(f"encode (median of {args.repeat})   {enc:8.2f} s  ({tokens / enc:,.0f} tokens/s)")
    print(f"decode (median of {args.repeat})   {dec:8.2f} s  ({tokens / dec:,.0f} tokens/s)")
    print(f"encode + decode        {enc + dec:8.2f} s  (target < 60 s)")
    print(f"decode 18 bars         {per18 * 1000:8.2f} ms  (deepjazz: ~11 s)")


if __name__ == "__main__":
    main()
