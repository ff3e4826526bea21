"""The report of `bench/soak.py`: the table, the faults, the jobs' ledger, each acceptance bound with
its figure, and the plot, from a run's saved data (``--json``; ``--report`` prints one again).

Memory is judged per process: a process killed and started again is a new one (new pid). The issue's
bound, RSS +5% and fds +10 after the first 10 minutes, is measured for each process from its sample
10 minutes into its own life (and into the run) to its largest after; a process that did not live
that long (a worker killed every 10 minutes never does) is shown by its plateau instead: the largest
RSS of its role in each 10-minute block of the run, across restarts.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.soak_probe import header, line, plot

SETTLE_MIN = 10.0  # minutes into a process's life (and the run) before its growth is measured


def faults_of(data: dict[str, Any]) -> list[tuple[float, str]]:
    out = []
    for f in data.get("faults", []):
        if isinstance(f, str):  # "10.0 min: worker killed (-9)"
            at, what = f.split(" min: ", 1)
            out.append((float(at), what))
        else:
            out.append((float(f[0]), str(f[1])))
    return out


def names_of(data: dict[str, Any]) -> list[str]:
    if data.get("names"):
        return list(data["names"])
    seen: dict[str, None] = {}
    for r in data["rows"]:
        seen.update(dict.fromkeys(r["procs"]))
    return list(seen)


def family(name: str) -> str:
    """``worker0``, ``worker1`` -> ``worker``: which index a worker has changes as workers die."""
    return name.rstrip("0123456789")


def lives(rows: list[dict], fam: str) -> dict[int, list[tuple[float, float, int]]]:
    """pid -> [(minute, RSS MiB, fds)] of each process of the family ``fam``."""
    out: dict[int, list[tuple[float, float, int]]] = {}
    for r in rows:
        for name, (rss, fds, pid) in r["procs"].items():
            if family(name) == fam:
                out.setdefault(pid, []).append((r["min"], rss, fds))
    return out


def growth(rows: list[dict], fam: str) -> list[str]:
    """One line per process of the family that lived past `SETTLE_MIN` of its life: RSS and fds from then to its largest."""
    out = []
    for pid, seen in lives(rows, fam).items():
        later = [s for s in seen if s[0] >= max(SETTLE_MIN, seen[0][0] + SETTLE_MIN)]
        if len(later) < 2:
            continue
        rss = (max(s[1] for s in later) / later[0][1] - 1) * 100
        fds = max(s[2] for s in later) - later[0][2]
        out.append(f"{fam} pid {pid} ({later[0][0]:.0f}-{seen[-1][0]:.0f} min): RSS {later[0][1]:.0f} -> max "
                   f"{max(s[1] for s in later):.0f} MiB ({rss:+.1f}%), fds {later[0][2]} -> max "
                   f"{max(s[2] for s in later)} ({fds:+d}) (bounds +5%, +10): "
                   f"{'held' if rss <= 5 and fds <= 10 else 'NOT HELD'}")
    return out


def plateau(rows: list[dict], fam: str) -> str:
    """The family's largest RSS and fds (of any one process) in each 10-minute block, across restarts."""
    blocks: dict[int, tuple[float, int]] = {}
    for r in rows:
        for name, (rss, fds, _) in r["procs"].items():
            if family(name) == fam:
                b = int(r["min"] // 10)
                old = blocks.get(b, (0.0, 0))
                blocks[b] = (max(old[0], rss), max(old[1], fds))
    cells = ", ".join(f"{b * 10}-{b * 10 + 10}: {v[0]:.0f}/{v[1]}" for b, v in sorted(blocks.items()))
    return f"{fam} plateau, largest MiB/fds of one process per 10 min: {cells}"


def redis_data(rows: list[dict]) -> str:
    """Redis's data (``used_memory``) per 10-minute block, smallest-largest: RSS beside what it holds."""
    blocks: dict[int, list[float]] = {}
    for r in rows:
        if r.get("redis_data_mib") is not None:
            blocks.setdefault(int(r["min"] // 10), []).append(r["redis_data_mib"])
    cells = ", ".join(f"{b * 10}-{b * 10 + 10}: {min(v):.0f}-{max(v):.0f}" for b, v in sorted(blocks.items()))
    return f"redis data (used_memory, MiB) per 10 min: {cells}"


def verdict(rows: list[dict], summary: dict[str, Any], names: list[str]) -> list[str]:
    """The acceptance bounds, one line each: the figure and whether it held."""
    out = []
    for fam in dict.fromkeys(family(n) for n in names):
        out += growth(rows, fam) or [f"{fam}: no process lived {SETTLE_MIN:.0f} minutes into its life past minute 10"]
        out.append(plateau(rows, fam))
        if fam == "redis" and any(r.get("redis_data_mib") is not None for r in rows):
            out.append(redis_data(rows))
    over = [r for r in rows if r["clip_dirs"] > r["retained_bound"]]
    out.append(f"clip store: max {max(r['clips_mib'] for r in rows):.1f} MiB, {max(r['clip_dirs'] for r in rows)} "
               f"folders; over the retention bound in {len(over)} of {len(rows)} samples: {'held' if not over else 'NOT HELD'}")
    last = rows[-1]
    per_job = [r["db_mib"] * 1024 / r["accepted"] for r in rows if r["accepted"] >= 100]
    out.append(f"SQLite: {last['db_main_mib']:.2f} MiB + WAL {last['db_mib'] - last['db_main_mib']:.2f} MiB for "
               f"{last['accepted']} jobs; KiB per job (file and WAL) "
               + (f"{per_job[0]:.1f} at 100+ jobs -> {per_job[-1]:.1f} at the end" if per_job else "-")
               + " (job rows are the record and stay; seeds and tokens are forgotten by retention)")
    stalls = [r["stall_ms"] for r in rows if r["stall_ms"] is not None]
    out.append(f"loop: longest stall {max(stalls, default=0):.0f} ms (bound 250): "
               f"{'held' if max(stalls, default=0) < 250 else 'NOT HELD'}")
    acks = [r["ack_max"] for r in rows if r["ack_max"] is not None]
    unacked = sum(r["unacked"] for r in rows)
    out.append(f"acks: max {max(acks, default=0):.2f} s, unanswered {unacked} (bounds 3 s, 0): "
               f"{'held' if max(acks, default=0) < 3 and not unacked else 'NOT HELD'}")
    s = summary
    balanced = s["accepted"] == s["delivered"] + s["failed_with_notice"] + s["cancelled"]
    out.append(f"jobs: accepted {s['accepted']} = delivered {s['delivered']} + failed with notice "
               f"{s['failed_with_notice']} + cancelled {s['cancelled']}: {'held' if balanced else 'NOT HELD'}; "
               f"duplicated {s['duplicated']}, lost {s['lost']}: "
               f"{'held' if not s['duplicated'] and not s['lost'] else 'NOT HELD'}")
    return out


def report(data: dict[str, Any], figure: Path) -> list[str]:
    """Print the table and the report of a run's ``data`` (as `bench/soak.py` saves it), draw its plot;
    returns the verdict's lines."""
    rows, names, faults, summary = data["rows"], names_of(data), faults_of(data), dict(data["summary"])
    print(header(names))
    for r in rows:
        print(line(r, names))
    print("\nfaults: " + "; ".join(f"{at:.1f} min: {what}" for at, what in faults))
    print("traffic: " + ", ".join(f"{k} {v}" for k, v in sorted(data.get("traffic", {}).items())))
    if "admin" in summary:
        print("admin answers (done/sent): " + ", ".join(f"{k} {v}" for k, v in summary["admin"].items()))
    print("jobs: " + json.dumps({k: v for k, v in summary.items() if k not in ("lost_jobs", "admin", "failures")}))
    if summary.get("failures"):
        print("failed jobs' reasons: " + "; ".join(f"{n} x {why}" for why, n in summary["failures"].items()))
    for lost in summary.get("lost_jobs", []):
        print(f"  lost: {lost}")
    checks = verdict(rows, summary, names)
    print("\n".join(checks))
    kind, minutes = data.get("kind", "?"), data.get("minutes") or round(rows[-1]["min"])
    plot(rows, names, f"soak, {kind} queue, {minutes:g} min (dotted: faults)", figure, faults)
    print(f"plot: {figure}")
    return checks
