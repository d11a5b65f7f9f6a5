#!/usr/bin/env python3
"""Benchmark: `cephstack rotate --all` against rotating the same four users by hand.

The seed layout (glance, cinder-volume, cinder-backup, nova; four pools) is applied by
cephstack on two fresh sandboxes (not timed). Then, timed as whole processes in the same
run: on one, `cephstack rotate --all --yes` (new keys in one `auth import`, the keyring
files rewritten, with the run lock and the rotation record); on the other, what an
operator runs on Pacific, which has no `ceph auth rotate`, per user:

    ceph auth get client.U -o U.keyring           # the current key and caps
    key=$(ceph-authtool --gen-print-key)          # a new key
    sed -i "s|key = .*|key = $key|" U.keyring     # in place of the old one, caps kept
    ceph auth import -i U.keyring                 # the cluster takes it
    ceph auth get client.U -o KEYS/ceph.client.U.keyring

Both results are checked: every keyring file holds the key the cluster has, and differs
from the one before. The monitors' commit counters (`ceph report`) are read around each.

    .venv/bin/python bench/rotate.py [--rounds 3]
    .venv/bin/python bench/rotate.py --client 120 [--ticket-ttl 10]

`--client SECONDS` measures instead what a client connected before the rotation does: a
librbd client with an open image writing every second, its connections cut now and then
(ms_inject_socket_failures), the monitors' ticket lifetimes lowered (auth_service_ticket_ttl
to --ticket-ttl, auth_mon_ticket_ttl to twice that) before it connects; `cephstack rotate`
of its user; then for SECONDS: its writes, its reconnections and its refused
re-authentications with the monitors (from its own log), every 10 s.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from apply import counters, settle, timed  # noqa: E402  (bench/apply.py's helpers)

from cephstack.sandbox.cluster import Sandbox  # noqa: E402
from cephstack.spec.defaults import DEFAULT_SPEC  # noqa: E402

CEPHSTACK = [str(ROOT / ".venv" / "bin" / "cephstack")]
USERS = ("glance", "cinder-volume", "cinder-backup", "nova")


def _prepared(work: Path, name: str) -> tuple[Sandbox, Path, Path]:
    """A fresh sandbox with the seed layout applied; its spec and keyring directory."""
    box = Sandbox(work / name)
    box.up()
    keys = work / f"{name}-keys"
    spec = work / f"{name}.yaml"
    spec.write_text(DEFAULT_SPEC.replace("/etc/ceph/ceph.conf", str(box.conf))
                    .replace("/etc/ceph/ceph.client.admin.keyring", str(box.admin_keyring))
                    .replace("/var/openstack/ceph", str(keys)))
    timed([*CEPHSTACK, "apply", "-f", str(spec), "--yes"])
    settle(box)
    return box, spec, keys


def _file_keys(keys: Path) -> dict[str, str]:
    return {u: next(line.split("=", 1)[1].strip() for line in
                    (keys / f"ceph.client.{u}.keyring").read_text().splitlines()
                    if line.strip().startswith("key")) for u in USERS}


def _check_rotated(box: Sandbox, keys: Path, before: dict[str, str], how: str) -> None:
    with box.connect() as conn:
        cluster = {u: conn.mon("auth get", entity=f"client.{u}")[0] for u in USERS}
    after = _file_keys(keys)
    for u in USERS:
        if after[u] != cluster[u]["key"] or after[u] == before[u]:
            sys.exit(f"{how}: the keyring of {u} was not rotated")
        if "osd" not in cluster[u]["caps"]:
            sys.exit(f"{how}: {u} lost its caps")


def by_hand_script(box: Sandbox, keys: Path, scratch: Path) -> str:
    c = f"-c {shlex.quote(str(box.conf))}"
    lines = ["set -e"]
    for u in USERS:
        tmp = shlex.quote(str(scratch / f"{u}.keyring"))
        lines += [f"ceph {c} auth get client.{u} -o {tmp}",
                  "key=$(ceph-authtool --gen-print-key)",
                  f'sed -i "s|key = .*|key = $key|" {tmp}',
                  f"ceph {c} auth import -i {tmp}",
                  f"ceph {c} auth get client.{u} -o {keys}/ceph.client.{u}.keyring",
                  f"rm -f {tmp}"]
    return "\n".join(lines) + "\n"


def run_cephstack(work: Path) -> dict:
    box, spec, keys = _prepared(work, "cs")
    try:
        before_keys, before = _file_keys(keys), counters(box)
        seconds, out = timed([*CEPHSTACK, "rotate", "--all", "-f", str(spec), "--yes",
                              "--output", "json"])
        after = counters(box)
        _check_rotated(box, keys, before_keys, "cephstack")
        return {"seconds": seconds, "mon_commands": json.loads(out)["mon_commands"],
                **{f"{k}_commits": after[k] - before[k] for k in before}}
    finally:
        box.down()


def run_by_hand(work: Path) -> dict:
    box, _, keys = _prepared(work, "hand")
    try:
        scratch = work / "hand-scratch"
        scratch.mkdir(mode=0o700)
        script = work / "rotate-by-hand.sh"
        script.write_text(by_hand_script(box, keys, scratch))
        before_keys, before = _file_keys(keys), counters(box)
        seconds, _ = timed(["bash", str(script)])
        after = counters(box)
        _check_rotated(box, keys, before_keys, "by hand")
        return {"seconds": seconds, "processes": 5 * len(USERS),
                **{f"{k}_commits": after[k] - before[k] for k in before}}
    finally:
        box.down()


def observe_client(work: Path, seconds: float, ttl: int) -> None:
    import threading
    import time

    import rados
    import rbd

    box, spec, keys = _prepared(work, "client")
    try:
        with box.connect() as conn:
            for name, value in (("auth_service_ticket_ttl", ttl),
                                ("auth_mon_ticket_ttl", 2 * ttl)):
                conn.mon("config set", who="global", name=name, value=str(value))
            with conn.ioctx("volume") as ioctx:
                rbd.RBD().create(ioctx.target, "volume-running", 8 << 20)
        log = work / "client.log"
        client = rados.Rados(conffile=str(box.conf), rados_id="cinder-volume", conf={
            "keyring": str(keys / "ceph.client.cinder-volume.keyring"), "log_file": str(log),
            "rados_osd_op_timeout": "5", "rados_mon_op_timeout": "5", "debug_monc": "10",
            "ms_inject_socket_failures": "50"})
        client.connect(timeout=10)
        writes: list[bool] = []
        stop = threading.Event()

        def write() -> None:
            with client.open_ioctx("volume") as io, rbd.Image(io, "volume-running") as image:
                while not stop.is_set():
                    try:
                        image.write(b"x" * 4096, 0)
                        image.flush()
                        writes.append(True)
                    except rbd.Error:
                        writes.append(False)
                    stop.wait(1)

        writer = threading.Thread(target=write)
        writer.start()
        time.sleep(3)
        timed([*CEPHSTACK, "rotate", "cinder-volume", "-f", str(spec), "--yes"])
        rotated, start = len(writes), time.monotonic()
        print(f"rotated; auth_service_ticket_ttl {ttl} s, auth_mon_ticket_ttl {2 * ttl} s")
        try:
            while time.monotonic() - start < seconds:
                time.sleep(10)
                text = log.read_text(errors="replace")
                after = writes[rotated:]
                print(f"  +{time.monotonic() - start:4.0f} s: writes ok {sum(after)}, failed "
                      f"{len(after) - sum(after)}; since it connected: connections cut "
                      f"{text.count('injecting socket failure')}, monitor auth refused "
                      f"{text.count('_finish_auth -13')}", flush=True)
        finally:
            stop.set()
            writer.join(timeout=30)
            client.shutdown()
    finally:
        box.down()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=1, help="fresh sandboxes per way")
    parser.add_argument("--client", type=float, metavar="SECONDS",
                        help="observe a client connected before the rotation instead")
    parser.add_argument("--ticket-ttl", type=int, default=10, metavar="SECONDS",
                        help="with --client: auth_service_ticket_ttl (default 10)")
    args = parser.parse_args()
    if args.client:
        with tempfile.TemporaryDirectory(prefix="bench-rotate-") as tmp:
            observe_client(Path(tmp), args.client, args.ticket_ttl)
        return 0
    ours, theirs = [], []
    with tempfile.TemporaryDirectory(prefix="bench-rotate-") as tmp:
        for i in range(args.rounds):
            work = Path(tmp) / f"round{i}"
            work.mkdir()
            ours.append(run_cephstack(work))
            theirs.append(run_by_hand(work))
            print(f"round {i + 1}: cephstack {ours[-1]['seconds']:.2f} s, by hand "
                  f"{theirs[-1]['seconds']:.2f} s", file=sys.stderr, flush=True)
    cs = statistics.median(r["seconds"] for r in ours)
    hand = statistics.median(r["seconds"] for r in theirs)
    print(f"Rotating the seed layout's 4 users ({args.rounds} round(s), median; whole "
          "processes, fresh sandbox each):")
    print(f"  cephstack rotate --all   {cs:6.2f} s   auth commits "
          f"{ours[0]['auth_commits']}, paxos commits {ours[0]['paxos_commits']}, "
          f"{ours[0]['mon_commands']} mon commands (one process)")
    print(f"  by hand (ceph CLI)       {hand:6.2f} s   auth commits "
          f"{theirs[0]['auth_commits']}, paxos commits {theirs[0]['paxos_commits']}, "
          f"{theirs[0]['processes']} processes")
    print(f"  ratio by hand / cephstack: {hand / cs:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
