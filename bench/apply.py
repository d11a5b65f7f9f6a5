#!/usr/bin/env python3
"""Benchmark: cephstack apply vs the seed's way (one `ceph`/`rbd` CLI process per command).

Each cold run gets a fresh sandbox cluster; the no-op run repeats the same job on the
cluster the cold run left. Both sides are timed as whole processes, in the same run, on
the monitor's default settings. Prints wall time, mon commands and the ratio.

    .venv/bin/python bench/apply.py [--layouts seed,large]
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cephstack.sandbox import Sandbox  # noqa: E402

CEPHSTACK = [str(ROOT / ".venv" / "bin" / "cephstack")]


def layout(name: str) -> tuple[dict[str, int], dict[str, tuple[str, str]]]:
    """pools (name -> pg_num) and users (name -> (mon caps, osd caps)) of a layout."""
    if name == "seed":
        pools = {p: 32 for p in ("images", "volume", "backups", "vm")}
        users = {
            "glance": ("profile rbd", "profile rbd pool=images"),
            "cinder-volume": ("profile rbd",
                              "profile rbd pool=volume, profile rbd-read-only pool=images"),
            "cinder-backup": ("profile rbd", "profile rbd pool=backups"),
            "nova": ("profile rbd", "profile rbd pool=vm, profile rbd-read-only pool=images"),
        }
        return pools, users
    pools = {f"pool{i:02d}": 8 for i in range(40)}
    users = {f"user{i:02d}": ("profile rbd", f"profile rbd pool=pool{i % 40:02d}")
             for i in range(80)}
    return pools, users


def spec_text(box: Sandbox, keys: Path, pools: dict, users: dict) -> str:
    lines = [f"cluster: {{conf: {box.conf}, keyring: {box.admin_keyring}}}", "pools:"]
    lines += [f"  {p}: {{pg_num: {pg}}}" for p, pg in pools.items()]
    lines.append("clients:")
    lines += [f"  {u}: {{caps: {{mon: '{mon}', osd: '{osd}'}}}}" for u, (mon, osd) in
              users.items()]
    lines.append(f"keyrings: {{directory: {keys}}}")
    return "\n".join(lines) + "\n"


def cli_script(box: Sandbox, keys: Path, pools: dict, users: dict) -> tuple[str, int]:
    """The guide's commands as an operator's shell script, plus `rbd pool init`."""
    c = f"-c {shlex.quote(str(box.conf))}"
    cmds = [f"mkdir -p {keys}"]
    for p, pg in pools.items():
        # autoscale off as cephstack does: the autoscaler would otherwise grow pools
        # while the script runs and overrun the PG limit on a one-OSD sandbox.
        cmds.append(f"ceph {c} osd pool create {p} {pg} {pg} replicated --autoscale-mode=off")
        cmds.append(f"rbd {c} pool init {p}")
    for u, (mon, osd) in users.items():
        cmds.append(f"ceph {c} auth get-or-create client.{u} mon {shlex.quote(mon)} "
                    f"osd {shlex.quote(osd)} >/dev/null")
        cmds.append(f"ceph {c} auth get client.{u} -o {keys}/ceph.client.{u}.keyring")
    return "set -e\n" + "\n".join(cmds) + "\n", len(cmds) - 1


def timed(cmd: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"benchmark step failed: {cmd[:3]}: {proc.stderr[-2000:]}")
    return elapsed, proc.stdout


def osds_for(pools: dict) -> int:
    """One OSD holds mon_max_pg_per_osd (250) PG replicas: enough OSDs for the layout, so
    plan's PG budget (counted on the real OSDs) accepts it. Both ways get the same."""
    return max(1, -(-sum(pools.values()) // 200))


def run_cephstack(work: Path, pools: dict, users: dict) -> dict:
    box = Sandbox(work / "cs-sandbox")
    try:
        box.up(osds=osds_for(pools))
        spec = work / "spec.yaml"
        spec.write_text(spec_text(box, work / "cs-keys", pools, users))
        cmd = [*CEPHSTACK, "apply", "-f", str(spec), "--yes", "--output", "json"]
        cold, out = timed(cmd)
        cold_cmds = json.loads(out)["mon_commands"]
        noop, out = timed(cmd)
        data = json.loads(out)
        assert data["changes"] is False, "the re-apply was not a no-op"
        return {"cold": cold, "noop": noop, "cold_cmds": cold_cmds,
                "noop_cmds": data["mon_commands"]}
    finally:
        box.down()


def run_cli(work: Path, pools: dict, users: dict) -> dict:
    box = Sandbox(work / "cli-sandbox")
    try:
        box.up(osds=osds_for(pools))
        text, count = cli_script(box, work / "cli-keys", pools, users)
        script = work / "seed-way.sh"
        script.write_text(text)
        cold, _ = timed(["bash", str(script)])
        noop, _ = timed(["bash", str(script)])
        return {"cold": cold, "noop": noop, "cold_cmds": count, "noop_cmds": count}
    finally:
        box.down()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layouts", default="seed,large",
                        help="comma-separated: seed (4 pools x 32 PGs, 4 users), "
                             "large (40 pools x 8 PGs, 80 users)")
    args = parser.parse_args()
    rows = []
    for name in args.layouts.split(","):
        pools, users = layout(name)
        with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
            print(f"[{name}] {len(pools)} pools, {len(users)} users: cephstack ...",
                  file=sys.stderr, flush=True)
            cs = run_cephstack(Path(tmp), pools, users)
            print(f"[{name}] the seed's way (CLI script) ...", file=sys.stderr, flush=True)
            cli = run_cli(Path(tmp), pools, users)
        for phase in ("cold", "noop"):
            rows.append((name, phase, cs[phase], cs[f"{phase}_cmds"], cli[phase],
                         cli[f"{phase}_cmds"], cli[phase] / cs[phase]))
    print(f"{'layout':<7} {'run':<5} {'cephstack s':>11} {'mon cmds':>8} "
          f"{'CLI script s':>12} {'CLI cmds':>8} {'speed-up':>9}")
    for name, phase, cs_s, cs_n, cli_s, cli_n, ratio in rows:
        print(f"{name:<7} {phase:<5} {cs_s:>11.2f} {cs_n:>8} {cli_s:>12.2f} {cli_n:>8} "
              f"{ratio:>8.1f}x")
    print("targets: seed cold >= 5x, no-op re-apply >= 20x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
