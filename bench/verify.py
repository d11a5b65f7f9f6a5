#!/usr/bin/env python3
"""Benchmark: the full `cephstack verify` on a fresh sandbox, total and per step.

Whole verify processes in the same run, on the same sandbox: the seed spec as shipped (the
evacuate takeover by the fencing path: the dead client blocklisted and its lock broken as
Nova's user), the same spec with a second Cinder backend (its workflows run alongside the
first's, so it should cost about nothing), and with `--evacuate-wait` (librbd's own
takeover, which waits until the OSDs drop the dead client's watch:
osd_client_watch_timeout, 30 s by default). The old path's takeover waits on a timer, not
on work, so it was the floor of a verify run. To show what bounds it, a last run lowers
osd_client_watch_timeout and takes over the old way again.

    .venv/bin/python bench/verify.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cephstack.ceph.adapter import CephConnection, ClusterAccess  # noqa: E402
from cephstack.sandbox.cluster import Sandbox  # noqa: E402
from cephstack.spec.defaults import DEFAULT_SPEC  # noqa: E402

CEPHSTACK = str(ROOT / ".venv" / "bin" / "cephstack")


def run(*args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    proc = subprocess.run([CEPHSTACK, *args], capture_output=True, text=True)
    return time.perf_counter() - started, proc


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-verify-") as tmp:
        box = Sandbox(Path(tmp) / "sandbox")
        try:
            box.up()
            spec = Path(tmp) / "spec.yaml"
            spec.write_text(DEFAULT_SPEC.replace("/etc/ceph/ceph.conf", str(box.conf))
                            .replace("/etc/ceph/ceph.client.admin.keyring",
                                     str(box.admin_keyring))
                            .replace("/var/openstack/ceph", f"{tmp}/keys"))
            _, applied = run("apply", "-f", str(spec), "--yes")
            assert applied.returncode == 0, applied.stderr
            total, proc = run("verify", "-f", str(spec), "--output", "json")
            report = json.loads(proc.stdout)
            print(f"{'step (as shipped: fencing path)':<62} {'result':<6} {'seconds':>8}")
            for s in report["steps"]:
                print(f"{s['service'] + ': ' + s['name']:<62} {s['result']:<6} "
                      f"{s['seconds']:>8.2f}")
            takeover = report["takeover_seconds"]
            two = Path(tmp) / "two-backends.yaml"
            two.write_text(spec.read_text()
                           .replace("  vm:      {pg_num: 32}",
                                    "  vm:      {pg_num: 32}\n  fast:    {pg_num: 16}")
                           .replace("pools: [volume]", "pools: [volume, fast]"))
            _, applied = run("apply", "-f", str(two), "--yes")
            assert applied.returncode == 0, applied.stderr
            two_total, two_proc = run("verify", "-f", str(two), "--output", "json")
            two_report = json.loads(two_proc.stdout)
            two_backends = sorted({s["backend"] for s in two_report["steps"] if s["backend"]})
            old_total, old_proc = run("verify", "-f", str(spec), "--evacuate-wait",
                                      "--output", "json")
            old = json.loads(old_proc.stdout)
            with CephConnection(ClusterAccess(str(box.conf), str(box.admin_keyring))) as c:
                watch = c.mon("config get", who="osd", key="osd_client_watch_timeout")
                c.mon("config set", who="osd", name="osd_client_watch_timeout", value="10")
            _, short = run("verify", "-f", str(spec), "--only", "nova", "--evacuate-wait",
                           "--output", "json")
            short_takeover = json.loads(short.stdout)["takeover_seconds"]
        finally:
            box.down()
    passed = report["passed"] and old["passed"] and two_report["passed"]
    print()
    print(f"verify total (whole process): {total:.1f} s, "
          f"{'passed' if report['passed'] else 'FAILED'}, {len(report['steps'])} steps; "
          f"evacuate takeover {takeover:.1f} s ({report['takeover_path']})")
    print(f"verify with two Cinder backends ({', '.join(two_backends)}): {two_total:.1f} s, "
          f"{'passed' if two_report['passed'] else 'FAILED'}, {len(two_report['steps'])} steps "
          f"({two_total / total:.2f}x the one-backend run)")
    print(f"verify --evacuate-wait (the old path): {old_total:.1f} s, "
          f"{'passed' if old['passed'] else 'FAILED'}; evacuate takeover "
          f"{old['takeover_seconds']:.1f} s ({old['takeover_path']})")
    print(f"old / new = {old_total / total:.2f}x faster (same run, same sandbox)")
    print(f"what bounds the old path: osd_client_watch_timeout = {watch} s -> takeover "
          f"{old['takeover_seconds']:.1f} s; set to 10 s -> takeover {short_takeover:.1f} s")
    print("target: the seed spec's verify at most 15 s; more backends must not slow it")
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
