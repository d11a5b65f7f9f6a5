#!/usr/bin/env python3
"""Benchmark: the seed cold apply on Pacific, Reef and Tentacle side by side, in one run.

Each round gives each release a fresh sandbox of that release (its daemons in the release's
root for Reef and Tentacle, docs/releases.md), waits until it is quiet (every PG
active+clean, the OSD map unchanged for 3 s), then times one cold `cephstack apply` of
bench/apply.py's seed layout (4 pools of 32 PGs, 4 users) with the release's own
python3-rados: the host's for Pacific, cephstack run in the root for Reef and Tentacle. The
releases take turns within each round, so a slower minute of the machine hits all three.

    .venv/bin/python bench/releases.py [--releases pacific,reef,tentacle] [--rounds 3]

Prints, per release: the whole process (for Reef and Tentacle including entering the root:
a mount namespace and chroot) and apply's own figure ("Apply complete: ... in X s"), the
median (min-max) of the rounds, its mon commands and the monitor's commits, and the ratio
of each median to Pacific's (target: within 1.5x). Roots that are not built are built
first (`scripts/releases`, about a minute each).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from apply import QUIET, counters, layout, spec_text  # noqa: E402

from cephstack.sandbox.cluster import Sandbox  # noqa: E402
from cephstack.sandbox.release import cli_argv, uses_host  # noqa: E402

CEPHSTACK = str(ROOT / ".venv" / "bin" / "cephstack")
_COMPLETE = re.compile(r"^Apply complete: \d+ step\(s\) in (?P<secs>[0-9.]+) s, "
                       r"(?P<cmds>\d+) mon command", re.M)


def settle(box: Sandbox, timeout: float = 60.0) -> None:
    """Quiet as a cluster in service: every PG active+clean, the OSD map unchanged for 3 s
    (Reef's manager makes no pool of its own here: its modules fail to load)."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    with box.connect() as conn:
        while time.monotonic() < deadline:
            status = conn.mon("status")
            epoch = status["osdmap"]["epoch"]
            if epoch != last:
                last, since = epoch, time.monotonic()
            states = status["pgmap"].get("pgs_by_state", [])
            if all(s["state_name"] == "active+clean" for s in states) and \
                    time.monotonic() - since >= 3:
                return
            time.sleep(0.25)
    sys.exit(f"the sandbox {box.dir} did not settle within {timeout:g} s")


def cold_apply(release: str, work: Path) -> dict:
    box = Sandbox(work / f"{release}-sandbox", release=release)
    try:
        box.up()
        pools, users = layout("seed")
        spec = work / f"{release}.yaml"
        spec.write_text(spec_text(box, work / f"{release}-keys", pools, users))
        args = ["apply", "-f", str(spec), "--yes"]
        argv, env = ([CEPHSTACK, *args], None) if uses_host(release) else \
            cli_argv(release, args, [work], work)
        settle(box)
        before = counters(box)
        time.sleep(QUIET)
        start = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=work)
        whole = time.perf_counter() - start
        after = counters(box)
        done = _COMPLETE.search(proc.stdout)
        if proc.returncode != 0 or done is None:
            sys.exit(f"{release}: the cold apply failed: {(proc.stdout + proc.stderr)[-2000:]}")
        return {"whole": whole, "apply": float(done.group("secs")),
                "cmds": int(done.group("cmds")),
                **{f"{k}_commits": after[k] - before[k] for k in before}}
    finally:
        box.down()


def _stats(values: list[float]) -> str:
    return f"{statistics.median(values):5.2f} ({min(values):.2f}-{max(values):.2f})"


def report(results: dict[str, list[dict]], rounds: int) -> None:
    print(f"# {time.strftime('%Y-%m-%d %H:%M')} on {platform.node()}: "
          f"{len(os.sched_getaffinity(0))} CPUs, host Python "
          f"{platform.python_version()}\n")
    print(f"seed cold apply, seconds: median (min-max) of {rounds} fresh cluster(s) each")
    print(f"{'release':<10}{'whole process':>20}{'apply itself':>20}{'x Pacific':>11}"
          f"{'mon cmds':>10}{'osdmap':>8}{'auth':>6}{'paxos':>7}")
    base = statistics.median(r["whole"] for r in results.get("pacific", [])) \
        if "pacific" in results else None
    base_apply = statistics.median(r["apply"] for r in results.get("pacific", [])) \
        if "pacific" in results else None
    for release, runs in results.items():
        whole = [r["whole"] for r in runs]
        own = [r["apply"] for r in runs]
        ratio = (f"{statistics.median(whole) / base:.2f}/{statistics.median(own) / base_apply:.2f}"
                 if base else "-")
        print(f"{release:<10}{_stats(whole):>20}{_stats(own):>20}{ratio:>11}"
              f"{runs[0]['cmds']:>10}{runs[0]['osdmap_commits']:>8}"
              f"{runs[0]['auth_commits']:>6}{runs[0]['paxos_commits']:>7}")
    print("x Pacific = median whole process / median apply itself, each over Pacific's; "
          "osdmap, auth, paxos = the monitor's commits during the cold apply (round 1)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--releases", default="pacific,reef,tentacle")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    releases = [r.strip() for r in args.releases.split(",") if r.strip()]
    if any(not uses_host(r) for r in releases):
        subprocess.run([str(ROOT / "scripts" / "releases")], check=True)
    results: dict[str, list[dict]] = {r: [] for r in releases}
    with tempfile.TemporaryDirectory(prefix="cephstack-bench-releases-") as tmp:
        for i in range(args.rounds):
            for release in releases:
                work = Path(tmp) / f"round{i}"
                work.mkdir(exist_ok=True)
                results[release].append(cold_apply(release, work))
                print(f"  round {i + 1}: {release}: {results[release][-1]['whole']:.2f} s",
                      file=sys.stderr)
    report(results, args.rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
