#!/usr/bin/env python3
"""Benchmark: the full `cephstack verify` on a fresh sandbox, total and per step.

The evacuate takeover waits on a timer, not on work, so it is the floor of a verify
run: the report gives total / takeover as the ratio against that floor, measured in the
same run. To show what bounds the takeover, a second run lowers the OSDs'
osd_client_watch_timeout (the time a dead client's watch lingers) and takes over again.

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
from cephstack.defaults import DEFAULT_SPEC  # noqa: E402
from cephstack.sandbox import Sandbox  # noqa: E402

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
            print(f"{'step':<62} {'result':<6} {'seconds':>8}")
            for s in report["steps"]:
                print(f"{s['service'] + ': ' + s['name']:<62} {s['result']:<6} "
                      f"{s['seconds']:>8.2f}")
            takeover = report["takeover_seconds"]
            with CephConnection(ClusterAccess(str(box.conf), str(box.admin_keyring))) as c:
                watch = c.mon("config get", who="osd", key="osd_client_watch_timeout")
                c.mon("config set", who="osd", name="osd_client_watch_timeout", value="10")
            _, short = run("verify", "-f", str(spec), "--only", "nova", "--output", "json")
            short_takeover = json.loads(short.stdout)["takeover_seconds"]
        finally:
            box.down()
    print()
    print(f"verify total (whole process): {total:.1f} s, "
          f"{'passed' if report['passed'] else 'FAILED'}")
    print(f"evacuate takeover: {takeover:.1f} s; total / takeover = {total / takeover:.2f}x "
          "(1.0x would be the floor: everything else hidden behind the lock wait)")
    print(f"what bounds it: osd_client_watch_timeout = {watch} s -> takeover {takeover:.1f} s; "
          f"set to 10 s -> takeover {short_takeover:.1f} s")
    print("target: total under 60 s")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
