#!/usr/bin/env python3
"""Benchmark: what `cephstack status` costs as a pool grows to thousands of images.

On a fresh sandbox with the default spec, 50 Glance images (each with a protected snapshot
and a Cinder volume cloned from it), then the Nova pool grown to each size. Each size times
whole processes, in the same run, on the same cluster:

  rbd ls          the baseline: one CLI process reading the pool's image directory
  rbd ls -l       the one-by-one way: opens every image (size, parent, format, lock)
  status 0        cephstack status --max-images 0: directory, trash, librbd's pool stats,
                  no image opened (exact counts of images, snapshots, trash)
  status          cephstack status as shipped (--max-images 1000: larger pools sampled)
  status all      cephstack status --max-images 1000000: every image opened

    .venv/bin/python bench/status.py [SIZE ...]     (default: 100 1000 3000 10000)
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cephstack.sandbox.cluster import Sandbox  # noqa: E402
from cephstack.spec.defaults import DEFAULT_SPEC  # noqa: E402

CEPHSTACK = str(ROOT / ".venv" / "bin" / "cephstack")
GLANCE_IMAGES = 50
RUNS = 3  # each measurement: the median of this many runs


def timed(*argv: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:4])} ... failed: {proc.stderr[-500:]}")
    return elapsed, proc


def median(*argv: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    runs = [timed(*argv) for _ in range(RUNS)]
    return statistics.median(t for t, _ in runs), runs[-1][1]


def main(sizes: list[int]) -> int:
    with tempfile.TemporaryDirectory(prefix="bench-status-") as tmp:
        box = Sandbox(Path(tmp) / "sandbox")
        try:
            box.up()
            spec = Path(tmp) / "spec.yaml"
            spec.write_text(DEFAULT_SPEC.replace("/etc/ceph/ceph.conf", str(box.conf))
                            .replace("/etc/ceph/ceph.client.admin.keyring",
                                     str(box.admin_keyring))
                            .replace("/var/openstack/ceph", f"{tmp}/keys"))
            timed(CEPHSTACK, "apply", "-f", str(spec), "--yes")
            rbd = ["rbd", "-c", str(box.conf), "-k", str(box.admin_keyring)]
            rows = []
            with box.connect() as conn:
                features = conn.features("layering", "exclusive_lock")
                # New pools' PGs are "unknown" until their OSD reports them to the manager,
                # and status does not read pools whose PGs it does not know to be active.
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline and any(
                        "active" not in pg["state"].split("+") for pg in conn.mon(
                            "pg dump", dumpcontents=["pgs_brief"])["pg_stats"]):
                    time.sleep(1)

                def glance(i: int) -> None:
                    name = f"glance-{i:04d}"
                    conn.rbd("create", "images", name, 1 << 30, 23, old_format=False,
                             features=features)
                    with conn.image("images", name) as image:
                        image.create_snap("snap")
                        image.protect_snap("snap")
                    conn.clone("images", name, "snap", "volume", f"volume-{i:04d}", features)

                def disk(i: int) -> None:
                    conn.rbd("create", "vm", f"disk-{i:06d}_disk", 1 << 30, 22,
                             old_format=False, features=features)

                with ThreadPoolExecutor(32) as pool:
                    list(pool.map(glance, range(GLANCE_IMAGES)))
                have = 0
                for size in sorted(sizes):
                    started = time.perf_counter()
                    with ThreadPoolExecutor(32) as pool:
                        list(pool.map(disk, range(have, size)))
                    have = size
                    made = time.perf_counter() - started
                    ls, _ = median(*rbd, "ls", "-p", "vm")
                    ls_l, _ = timed(*rbd, "ls", "-l", "-p", "vm")  # slow: once
                    status = [CEPHSTACK, "status", "-f", str(spec), "--output", "json"]
                    counts, _ = median(*status, "--max-images", "0")
                    default, proc = median(*status)
                    opened = json.loads(proc.stdout)["reads"]["images_opened"]
                    full, proc = timed(*status, "--max-images", "1000000")
                    total = json.loads(proc.stdout)["reads"]["images_opened"]
                    rows.append((size, made, ls, ls_l, counts, default, opened, full, total))
                    print(f"  vm pool at {size} images ({made:.1f} s to create)", flush=True)
        finally:
            box.down()
    print()
    print(f"{'vm images':>9} {'rbd ls':>7} {'rbd ls -l':>9} {'status 0':>8} "
          f"{'status':>7} {'opened':>6} {'status all':>10} {'opened':>6} {'status/ls':>9}")
    for size, _, ls, ls_l, counts, default, opened, full, total in rows:
        print(f"{size:>9} {ls:>7.2f} {ls_l:>9.2f} {counts:>8.2f} {default:>7.2f} {opened:>6} "
              f"{full:>10.2f} {total:>6} {default / ls:>8.1f}x")
    if len(rows) >= 2:
        (n0, *_, c0, d0, _, f0, t0), (n1, *_, c1, d1, _, f1, t1) = rows[0], rows[-1]
        grow = n1 - n0
        print()
        print(f"per extra image: status 0 {(c1 - c0) / grow * 1e3:.3f} ms (directory and "
              f"pool stats); status all {(f1 - f0) / (t1 - t0) * 1e3:.2f} ms per image opened")
        print(f"status as shipped from {n0} to {n1} images: {d0:.2f} s -> {d1:.2f} s "
              "(opens capped at 1000; the rest grows with the directory and pool stats)")
    print("all times are whole processes in seconds (median of "
          f"{RUNS} runs, except rbd ls -l and status all: one run)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main([int(a) for a in sys.argv[1:]] or [100, 1000, 3000, 10000]))
