#!/usr/bin/env python3
"""Benchmark: cephstack apply and plan at scale, against the seed's way (one `ceph`/`rbd`
CLI process per command) and against a minimal librados read of the same state.

Every cold run gets a fresh sandbox cluster (enough OSDs for the layout's PG budget, the
same for both ways); the no-op re-apply and the plan then run on the cluster the cold run
left. Everything is timed as a whole process, in the same run, on the monitor's default
settings (paxos_propose_interval 1 s). The monitor's own counters (`ceph report`: osdmap
epochs, auth commits, all paxos commits) are read before and after each cold apply.

    .venv/bin/python bench/apply.py [--layouts seed,large,pools,users,big] [--rounds 3]
                                    [--cli-rounds 1] [--no-bound]

Prints, per layout, the median (and min-max) of each phase, the ratio of the seed's way to
cephstack where the CLI script runs in reasonable time (seed, large), and the ratio of the
no-op and plan to the minimal read. Then the pool-creation experiment: the same 200 pool
creates sent with different client concurrency, and the osdmap epochs each took.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import platform
import random
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cephstack.sandbox.cluster import Sandbox  # noqa: E402
from cephstack.spec.defaults import DEFAULT_SPEC  # noqa: E402

PYTHON = str(ROOT / ".venv" / "bin" / "python")
CEPHSTACK = [str(ROOT / ".venv" / "bin" / "cephstack")]
CLI_LAYOUTS = ("seed", "large")  # where the CLI script runs in reasonable time

LAYOUTS = {  # name: (pools, PGs per pool, users), described for the table
    "seed": (4, 32, 4),
    "large": (40, 8, 80),
    "pools": (200, 4, 0),
    "users": (0, 0, 1000),
    "big": (200, 4, 1000),
}


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
    count, pg, user_count = LAYOUTS[name]
    pools = {f"pool{i:03d}": pg for i in range(count)}
    users = {f"user{i:04d}": ("profile rbd", f"profile rbd pool=pool{i % max(count, 1):03d}")
             for i in range(user_count)}
    return pools, users


def spec_text(box: Sandbox, keys: Path, pools: dict, users: dict) -> str:
    lines = [f"cluster: {{conf: {box.conf}, keyring: {box.admin_keyring}}}", "pools:"]
    lines += [f"  {p}: {{pg_num: {pg}}}" for p, pg in pools.items()] or ["  {}"]
    lines.append("clients:")
    lines += [f"  {u}: {{caps: {{mon: '{mon}', osd: '{osd}'}}}}" for u, (mon, osd) in
              users.items()] or ["  {}"]
    lines.append(f"keyrings: {{directory: {keys}}}")
    return "\n".join(lines) + "\n"


def cli_script(box: Sandbox, keys: Path, pools: dict, users: dict) -> tuple[str, int]:
    """The guide's commands as an operator's shell script, plus `rbd pool init`."""
    c = f"-c {shlex.quote(str(box.conf))}"
    cmds = [f"mkdir -p {keys}"]
    for p, pg in pools.items():
        # autoscale off as cephstack does: the autoscaler would otherwise grow pools
        # while the script runs and overrun the PG limit.
        cmds.append(f"ceph {c} osd pool create {p} {pg} {pg} replicated --autoscale-mode=off")
        cmds.append(f"rbd {c} pool init {p}")
    for u, (mon, osd) in users.items():
        cmds.append(f"ceph {c} auth get-or-create client.{u} mon {shlex.quote(mon)} "
                    f"osd {shlex.quote(osd)} >/dev/null")
        cmds.append(f"ceph {c} auth get client.{u} -o {keys}/ceph.client.{u}.keyring")
    return "set -e\n" + "\n".join(cmds) + "\n", len(cmds) - 1


# What a plain librados script needs to read the same state as observe: one connection,
# the same six mon commands (JSON parsed), rbd_info of each pool, each keyring file.
MINIMAL_READ = """
import json, sys, rados
conf, keyring, pools, files = json.loads(sys.argv[1])
cluster = rados.Rados(conffile=conf, conf={"keyring": keyring})
cluster.connect()
for prefix, extra in (("osd pool ls", {"detail": "detail"}), ("osd crush rule dump", {}),
                      ("auth ls", {}), ("status", {}), ("config dump", {}), ("osd tree", {})):
    ret, out, err = cluster.mon_command(json.dumps({"prefix": prefix, "format": "json",
                                                    **extra}), b"")
    assert ret == 0, err
    json.loads(out)
for pool in pools:
    with cluster.open_ioctx(pool) as ioctx:
        ioctx.read("rbd_info")
for path in files:
    with open(path) as f:
        f.read()
cluster.shutdown()
"""


def timed(cmd: list[str], env: dict | None = None) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"benchmark step failed: {cmd[:3]}: {proc.stderr[-2000:]}")
    return elapsed, proc.stdout


_DONE = re.compile(r"^  [+~] (?P<what>.+): done$")
_COMPLETE = re.compile(r"^Apply complete: \d+ step\(s\) in [0-9.]+ s, (?P<cmds>\d+) mon command")


_KINDS = {"pool": "pools created (osd pool create)",
          "pool: application rbd": "rbd application enabled",
          "pool: rbd pool init (validate)": "validation snapshots taken, rbd_info written",
          "pool: rbd pool init (done)": "pools validated (snapshot releases sent, not waited for)"}


def _kind(what: str) -> str:
    """A progress line's kind of step, without the pool's or user's name."""
    if what.startswith("client."):
        return "users created, caps changed (one auth import)"
    if what.startswith("keyring "):
        return "keyring files written"
    kind = re.sub(r"^pool \S+?(:|$)", r"pool\1", what)
    return _KINDS.get(kind, kind)


def timed_apply(cmd: list[str]) -> tuple[float, int, list[tuple[str, float]]]:
    """A whole apply process in text mode: seconds, its mon commands, and when the last
    step of each kind was done (seconds from the start): the dependent rounds."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout: list[str] = []
    last: dict[str, float] = {}

    def read_stdout() -> None:
        for line in proc.stdout:
            stdout.append(line)
            if line.startswith("Plan: "):  # the plan is shown, apply takes the run lock
                last["plan shown (observed, planned)"] = time.perf_counter() - start

    reader = threading.Thread(target=read_stdout, daemon=True)
    reader.start()
    for line in proc.stderr:
        if m := _DONE.match(line.rstrip("\n")):
            last[_kind(m.group("what"))] = time.perf_counter() - start
    proc.wait()
    elapsed = time.perf_counter() - start
    reader.join()
    complete = [m for line in stdout if (m := _COMPLETE.match(line))]
    if proc.returncode != 0 or not complete:
        sys.exit(f"benchmark step failed: {cmd[:3]}: {''.join(stdout)[-2000:]}")
    timeline = sorted(last.items(), key=lambda kv: kv[1]) + [("process exit", elapsed)]
    return elapsed, int(complete[0].group("cmds")), timeline


def osds_for(pools: dict) -> int:
    """One OSD holds mon_max_pg_per_osd (250) PG replicas: enough OSDs for the layout, so
    plan's PG budget (counted on the real OSDs) accepts it. Both ways get the same."""
    return max(1, -(-sum(pools.values()) // 200))


# Both ways start once the harness's own last command is this old: the monitor audits every
# command and commits that log entry, and any commit holds the next OSD map change back for
# up to paxos_propose_interval (1 s): a command sent just before would time the harness.
# CEPHSTACK_BENCH_QUIET=SECONDS changes it.
QUIET = float(os.environ.get("CEPHSTACK_BENCH_QUIET", "1.5"))
# PHASES: an idle sandbox monitor commits every second (the manager's report, then the
# cluster log of it, each held to 1 s after the last commit), so a cold apply's first OSD
# map change waits for the next second of that cycle: 0-1 s, set by when it starts. The
# several-clusters section starts its rounds at offsets spread over that second (the same
# offset for 1 and N clusters in a round), not at one lucky or unlucky point of it.


def counters(box: Sandbox) -> dict[str, int]:
    """The monitor's own commit counters (`ceph report`): osdmap epochs, auth commits, and
    every paxos commit (all services: logm and mgrstat commit on their own too)."""
    with box.connect() as conn:
        report = conn.mon("report")
    return {"osdmap": report["osdmap_last_committed"],
            "auth": report["auth"]["last_committed"],
            "paxos": report["paxos"]["last_committed"]}


def settle(box: Sandbox, timeout: float = 60.0) -> None:
    """Wait until a new sandbox is quiet, as a cluster in service is: the manager has made
    its own pool, every PG is active+clean and the OSD map has not changed for 3 s (a
    change still pending would carry the first pool creates for free)."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    with box.connect() as conn:
        while time.monotonic() < deadline:
            status = conn.mon("status")
            epoch = status["osdmap"]["epoch"]
            states = status["pgmap"].get("pgs_by_state", [])
            if epoch != last:
                last, since = epoch, time.monotonic()
            clean = states and all(s["state_name"] == "active+clean" for s in states)
            if clean and "device_health_metrics" in conn.mon("osd pool ls") \
                    and time.monotonic() - since >= 3:
                return
            time.sleep(0.25)
    sys.exit(f"the sandbox {box.dir} did not settle within {timeout:g} s")


def run_cephstack(work: Path, pools: dict, users: dict) -> dict:
    box = Sandbox(work / "cs-sandbox")
    try:
        box.up(osds=osds_for(pools))
        keys = work / "cs-keys"
        spec = work / "spec.yaml"
        spec.write_text(spec_text(box, keys, pools, users))
        apply = [*CEPHSTACK, "apply", "-f", str(spec), "--yes"]
        settle(box)
        before = counters(box)
        time.sleep(QUIET)
        cold, cold_cmds, timeline = timed_apply(apply)
        after = counters(box)
        noop, out = timed([*apply, "--output", "json"])
        data = json.loads(out)
        assert data["changes"] is False, "the re-apply was not a no-op"
        plan, out = timed([*CEPHSTACK, "plan", "-f", str(spec), "--output", "json"])
        assert json.loads(out)["changes"] is False, "the plan after apply is not empty"
        files = [str(keys / f"ceph.client.{u}.keyring") for u in users]
        minimal, _ = timed([PYTHON, "-c", MINIMAL_READ, json.dumps(
            [str(box.conf), str(box.admin_keyring), list(pools), files])])
        return {"cold": cold, "noop": noop, "plan": plan, "minimal": minimal,
                "cold_cmds": cold_cmds, "noop_cmds": data["mon_commands"], "timeline": timeline,
                **{f"{k}_commits": after[k] - before[k] for k in before}}
    finally:
        box.down()


def run_cli(work: Path, pools: dict, users: dict) -> dict:
    box = Sandbox(work / "cli-sandbox")
    try:
        box.up(osds=osds_for(pools))
        text, count = cli_script(box, work / "cli-keys", pools, users)
        script = work / "seed-way.sh"
        script.write_text(text)
        settle(box)
        time.sleep(QUIET)
        cold, _ = timed(["bash", str(script)])
        noop, _ = timed(["bash", str(script)])
        return {"cold": cold, "noop": noop, "cmds": count}
    finally:
        box.down()


def pool_creation_bound(work: Path, count: int = 200) -> tuple[list[tuple], dict[str, str]]:
    """`count` pool creates (1 PG each), then the rbd application enabled on each, sent
    with different client concurrency on one connection: seconds and osdmap epochs of each
    batch. One sandbox, 5 OSDs (800 PGs), monitor defaults (shown with the rows) but for the
    last row."""
    from concurrent.futures import ThreadPoolExecutor

    box = Sandbox(work / "bound-sandbox")
    rows: list[tuple] = []
    try:
        box.up(osds=5)
        settle(box)
        with box.connect() as conn:
            settings = {name: conn.mon("config get", who="mon", key=name)
                        for name in ("paxos_propose_interval", "mon_osd_crush_smoke_test")}

            def batch(workers: int, call, names: list[str]) -> tuple[float, int]:
                first = conn.mon("report")["osdmap_last_committed"]
                start = time.perf_counter()
                with ThreadPoolExecutor(max_workers=workers) as pool:
                    list(pool.map(call, names))
                seconds = time.perf_counter() - start
                return seconds, conn.mon("report")["osdmap_last_committed"] - first

            runs = [(" 32 at a time", 32), ("128 at a time", 128), (f"all {count} at once", count),
                    # The one change to the monitor's defaults, for this last row only: is
                    # its per-create CRUSH smoke test (a forked child) what bounds creates?
                    (f"all {count}, no smoke test", count)]
            for label, workers in runs:
                if "smoke" in label:
                    conn.mon("config set", who="mon", name="mon_osd_crush_smoke_test",
                             value="false")
                time.sleep(1.5)  # each batch starts a proposal interval after the last
                names = [f"b{len(rows)}-{i:03d}" for i in range(count)]
                create = batch(workers, lambda n: conn.mon(
                    "osd pool create", pool=n, pg_num=1, pgp_num=1, autoscale_mode="off"), names)
                enable = batch(workers, lambda n: conn.mon(
                    "osd pool application enable", pool=n, app="rbd"), names)
                rows.append((label, *create, *enable))
    finally:
        box.down()
    return rows, {k: str(v).strip() for k, v in settings.items()}


def clusters_spec(boxes: list[Sandbox], keys: Path) -> str:
    """The seed layout on each cluster, in one spec: images-, volume-, backups-, vm-<site>
    per cluster; Glance, Cinder and Nova use a pool on each, Cinder backup site0's."""
    sites = [box.cluster for box in boxes]
    lines = ["clusters:"] + [f"  {b.cluster}: {{conf: {b.conf}, keyring: {b.admin_keyring}}}"
                             for b in boxes]
    lines.append("pools:")
    lines += [f"  {use}-{site}: {{cluster: {site}, pg_num: 32}}"
              for site in sites for use in ("images", "volume", "backups", "vm")]
    lines += ["services:",
              f"  glance: {{user: glance, pools: [{', '.join(f'images-{s}' for s in sites)}]}}",
              "  cinder-volume: {user: cinder-volume, pools: "
              f"[{', '.join(f'volume-{s}' for s in sites)}]}}",
              f"  cinder-backup: {{user: cinder-backup, pool: backups-{sites[0]}}}",
              f"  nova: {{user: nova, pools: [{', '.join(f'vm-{s}' for s in sites)}]}}",
              f"keyrings: {{directory: {keys}}}"]
    return "\n".join(lines) + "\n"


def run_clusters(work: Path, count: int, phase: float) -> float:
    """Cold apply of the seed layout on `count` fresh clusters (one spec, one process);
    count 0: the one-cluster form (`cluster:`) of the seed layout, the baseline. Started
    `phase` s (0-1) later than QUIET: see PHASES."""
    boxes = [Sandbox(work / f"site{i}", cluster=f"site{i}") for i in range(max(count, 1))]
    try:
        threads = [threading.Thread(target=b.up) for b in boxes]  # created at once
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        spec = work / "spec.yaml"
        if count:
            spec.write_text(clusters_spec(boxes, work / "keys"))
        else:
            spec.write_text(DEFAULT_SPEC.replace("/etc/ceph/ceph.conf", str(boxes[0].conf))
                            .replace("/etc/ceph/ceph.client.admin.keyring",
                                     str(boxes[0].admin_keyring))
                            .replace("/var/openstack/ceph", str(work / "keys")))
        for b in boxes:
            settle(b)
        time.sleep(QUIET + phase)
        cold, _ = timed([*CEPHSTACK, "apply", "-f", str(spec), "--yes"])
        _, out = timed([*CEPHSTACK, "apply", "-f", str(spec), "--yes", "--output", "json"])
        assert json.loads(out)["changes"] is False, "the re-apply was not a no-op"
        return cold
    finally:
        for b in boxes:
            b.down()


def _stats(values: list[float]) -> str:
    med = statistics.median(values)
    return f"{med:6.2f}" if len(values) == 1 else \
        f"{med:6.2f} ({min(values):.2f}-{max(values):.2f})"


def _print_layouts(results: dict, rounds: int) -> None:
    print("\ncephstack, whole processes, seconds: median (min-max) of "
          f"{rounds} fresh cluster(s)")
    print(f"{'layout':<7} {'cold':>18} {'no-op':>18} {'plan':>18} {'minimal read':>18} "
          f"{'osdmap':>6} {'auth':>5} {'paxos':>5} {'mon cmds':>8}")
    for name, (cs, _) in results.items():
        col = {k: [r[k] for r in cs] for k in cs[0]}
        print(f"{name:<7} {_stats(col['cold']):>18} {_stats(col['noop']):>18} "
              f"{_stats(col['plan']):>18} {_stats(col['minimal']):>18} "
              f"{statistics.median(col['osdmap_commits']):>6g} "
              f"{statistics.median(col['auth_commits']):>5g} "
              f"{statistics.median(col['paxos_commits']):>5g} "
              f"{statistics.median(col['cold_cmds']):>8g}")
    print("osdmap = epochs, auth = auth commits, paxos = all monitor commits (logm and "
          "mgrstat included) during the cold apply; mon cmds = the apply's mon commands")

    for name, (cs, _) in results.items():
        print(f"\n{name}: when the last step of each kind was done, seconds from the start of "
              "the cold apply (round 1)")
        for what, at in cs[0]["timeline"]:
            print(f"  {at:6.2f}  {what}")

    print("\nno-op and plan against the minimal librados read of the same state "
          "(medians; target <= 2x)")
    for name, (cs, _) in results.items():
        minimal = statistics.median(r["minimal"] for r in cs)
        print(f"{name:<7} no-op {statistics.median(r['noop'] for r in cs) / minimal:4.1f}x   "
              f"plan {statistics.median(r['plan'] for r in cs) / minimal:4.1f}x")

    if any(cli for _, cli in results.values()):
        print("\nagainst the seed's way (CLI script: one process per command), same run")
        print(f"{'layout':<7} {'run':<5} {'cephstack s':>11} {'CLI script s':>12} "
              f"{'CLI cmds':>8} {'speed-up':>9}")
        for name, (cs, cli) in results.items():
            for phase in ("cold", "noop") if cli else ():
                mine = statistics.median(r[phase] for r in cs)
                theirs = statistics.median(r[phase] for r in cli)
                print(f"{name:<7} {phase:<5} {mine:>11.2f} {theirs:>12.2f} "
                      f"{cli[0]['cmds']:>8} {theirs / mine:>8.1f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layouts", default="seed,large,pools,users,big",
                        help="comma-separated, of: " + ", ".join(
                            f"{n} ({p} pools x {g} PGs, {u} users)"
                            for n, (p, g, u) in LAYOUTS.items()))
    parser.add_argument("--rounds", type=int, default=3,
                        help="fresh-cluster rounds of cephstack per layout (default 3)")
    parser.add_argument("--cli-rounds", type=int, default=1,
                        help="rounds of the CLI script for seed and large (default 1; 0: skip)")
    parser.add_argument("--no-bound", action="store_true",
                        help="skip the pool-creation concurrency experiment")
    parser.add_argument("--clusters", type=int, default=0, metavar="N",
                        help="also: the seed layout applied to 1 cluster and to N clusters "
                             "in one spec (N sandboxes), cold apply, --rounds each; round r "
                             "starts (r + 0.5)/rounds s into the monitors' 1 s commit cycle")
    parser.add_argument("--cephstack", metavar="CMD",
                        help="the cephstack command to time (default: .venv/bin/cephstack), "
                             "e.g. to compare another checkout")
    args = parser.parse_args()
    if args.cephstack:
        CEPHSTACK[:] = shlex.split(args.cephstack)
    # Time the tool as installed: its bytecode compiled (scripts/bootstrap does the same).
    compileall.compile_dir(str(ROOT / "cephstack"), quiet=1)
    print(f"# {time.strftime('%Y-%m-%d %H:%M')} on {platform.node()}: {os.cpu_count()} CPUs, "
          f"{platform.python_version()}", flush=True)
    results = {}
    for name in filter(None, args.layouts.split(",")):
        pools, users = layout(name)
        cs, cli = [], []
        for r in range(args.rounds):
            with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
                print(f"[{name}] {len(pools)} pools, {len(users)} users: cephstack, round "
                      f"{r + 1}/{args.rounds} ...", file=sys.stderr, flush=True)
                cs.append(run_cephstack(Path(tmp), pools, users))
        for r in range(args.cli_rounds if name in CLI_LAYOUTS else 0):
            with tempfile.TemporaryDirectory(prefix=f"bench-{name}-cli-") as tmp:
                print(f"[{name}] the seed's way (CLI script), round {r + 1} ...",
                      file=sys.stderr, flush=True)
                cli.append(run_cli(Path(tmp), pools, users))
        results[name] = (cs, cli)

    if results:
        _print_layouts(results, args.rounds)

    if args.clusters:
        times: dict[str, list[float]] = {}
        phases = [(r + 0.5) / args.rounds for r in range(args.rounds)]
        random.Random(args.rounds).shuffle(phases)
        for r, phase in enumerate(phases):
            for label, count in (("1 cluster (cluster:)", 0),
                                 (f"{args.clusters} clusters (clusters:)", args.clusters)):
                with tempfile.TemporaryDirectory(prefix="bench-clusters-") as tmp:
                    print(f"[clusters] seed layout, {label}, round {r + 1}/{args.rounds} "
                          f"(+{phase:.2f} s) ...", file=sys.stderr, flush=True)
                    times.setdefault(label, []).append(run_clusters(Path(tmp), count, phase))
        print(f"\nseed layout on several clusters: cold apply, s ({args.rounds} rounds, "
              "median (min-max)); round r starts (r + 0.5)/rounds s later into the "
              "monitors' 1 s commit cycle, the same for both")
        for label, values in times.items():
            print(f"{label:<28} {_stats(values)}")
        print("per round (offset: 1 cluster / N clusters): " + ", ".join(
            f"+{p:.2f} {a:.2f}/{b:.2f}" for p, a, b in zip(phases, *times.values(), strict=True)))
        one, many = (statistics.median(v) for v in times.values())
        print(f"ratio {args.clusters} clusters / 1 cluster: {many / one:.2f}x (target <= 1.3x)")

    if not args.no_bound:
        with tempfile.TemporaryDirectory(prefix="bench-bound-") as tmp:
            print("[bound] 200 pool creates, then 200 application enables, at different "
                  "client concurrency ...", file=sys.stderr, flush=True)
            rows, settings = pool_creation_bound(Path(tmp))
        print("\nwhat bounds pool creation: 200 `osd pool create` (1 PG each), then 200 "
              "`osd pool application enable`, one connection; monitor "
              + ", ".join(f"{k} = {v}" for k, v in settings.items()))
        print(f"{'client concurrency':<24} {'create s':>8} {'epochs':>6} {'enable s':>8} "
              f"{'epochs':>6}")
        for label, c_s, c_e, e_s, e_e in rows:
            print(f"{label:<24} {c_s:>8.2f} {c_e:>6} {e_s:>8.2f} {e_e:>6}")

    print("\ntargets: seed cold >= 9x the CLI script; big cold <= 10 s; big no-op <= 0.5 s; "
          "auth commits for 1,000 new users <= 3; no-op and plan <= 2x the minimal read")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
