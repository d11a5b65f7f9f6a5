"""A monitor lost mid-run (issue 22), against a real sandbox: its only monitor is SIGKILLed
at several moments of a verify (and verify itself once), then started again. Each verify
ends with one `error:` line naming what did not answer and the step it was in, exit 5 (or
3), within about one operation timeout; `verify --cleanup` then leaves every pool, its
namespaces and its trash exactly as they were before the verify. An apply that loses its
monitor ends within one operation timeout plus its bounded cleanup."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import rados

from cephstack.verify.model import MARKER

ROOT = Path(__file__).parents[2]
POOLS = ("images", "volume", "backups", "vm")
OP = 5  # --op-timeout of the runs that lose their monitor
FAST = ["--op-timeout", str(OP), "--connect-timeout", str(OP)]
BOUND = 2 * OP + 15  # one timeout, calls already in flight, cleanup and Python's start-up


def spawn(cluster, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "cephstack", *args], cwd=cluster.workdir,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


def wait_for_line(proc: subprocess.Popen[str], text: str, limit: float = 120) -> list[str]:
    lines, deadline = [], time.monotonic() + limit
    for line in proc.stderr:
        lines.append(line)
        if text in line or time.monotonic() > deadline:
            break
    assert any(text in line for line in lines), "".join(lines)
    return lines


def state(cluster) -> dict:
    """Every pool's objects (in every namespace), the entries of librbd's indexes (the
    index objects appear on first use and stay), its images, trash and namespaces; the
    pools themselves; cephstack's lock records."""
    out: dict = {}
    with cluster.admin() as conn:
        out["pools"] = sorted(conn.mon("osd pool ls"))
        out["locks"] = sorted(conn.mon("config-key dump", key="cephstack/lock/") or {})
        for pool in POOLS:
            with conn.ioctx(pool) as ioctx:
                io = ioctx.target
                io.set_namespace(rados.LIBRADOS_ALL_NSPACES)
                objects = sorted((o.nspace, o.key) for o in io.list_objects())
                entries = []
                for nspace, key in objects:
                    if key in ("rbd_directory", "rbd_children", "rbd_trash", "rbd_namespace"):
                        io.set_namespace(nspace)
                        with rados.ReadOpCtx() as op:
                            found, _ = io.get_omap_vals(op, "", "", 10000)
                            io.operate_read_op(op, key)
                            entries += [f"{nspace}/{key}:{k}" for k, _ in found]
            out[pool] = {
                "objects": [o for o in objects if o[1] not in (
                    "rbd_directory", "rbd_children", "rbd_trash", "rbd_namespace")],
                "index entries": sorted(entries),
                "images": sorted(conn.rbd("list", pool)),
                "trash": sorted((t["id"], t["name"]) for t in conn.rbd("trash_list", pool)),
                "namespaces": sorted(conn.rbd("namespace_list", pool))}
    return out


def kill_monitor(cluster) -> None:
    pid = cluster.box.status().running["mon.a"]
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while cluster.box.status().running["mon.a"] is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    cluster.box.stop_daemon("mon.a")  # gone already: only its pid file is cleared


def start_monitor(cluster) -> None:
    cluster.box.start_daemon("mon.a")
    deadline = time.monotonic() + 60
    while True:  # until it answers (and the OSD is back in its map)
        try:
            with cluster.admin() as conn:
                if conn.mon("osd stat")["num_up_osds"] >= 1:
                    return
        except Exception:  # noqa: BLE001 - not up yet
            if time.monotonic() > deadline:
                raise
        time.sleep(0.5)


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("error:")]


@pytest.fixture(scope="module")
def spec(cluster):
    path = cluster.write_spec()
    done = cluster.cli("apply", "-f", str(path), "--yes")
    assert done.returncode == 0, done.stderr
    first = cluster.cli("verify", "-f", str(path), "--only", "glance")  # librbd's indexes
    assert first.returncode == 0, first.stdout + first.stderr
    return path


# (progress line to wait for, seconds after it, --output)
MOMENTS = [("cinder-backup: full backup", 0.0, "text"),
           ("cinder-volume: snapshot (create, protect)", 0.3, "json"),
           ("nova: resize snapshot and revert", 0.0, "text"),
           ("glance: connect with its own keyring", 0.0, "json")]


@pytest.mark.parametrize("moment", MOMENTS, ids=[m[0].split(":")[0] + f"-{i}"
                                                 for i, m in enumerate(MOMENTS)])
def test_a_verify_that_loses_its_monitor_says_why_and_leaves_nothing(cluster, spec, moment):
    line, delay, output = moment
    before = state(cluster)
    verify = spawn(cluster, "verify", "-f", str(spec), *FAST, "--output", output)
    try:
        wait_for_line(verify, line)
        time.sleep(delay)
        kill_monitor(cluster)
        started = time.monotonic()
        out, err = verify.communicate(timeout=BOUND + 60)
        seconds = time.monotonic() - started
    finally:
        verify.kill()
        start_monitor(cluster)
    assert verify.returncode in (3, 5), out + err
    assert seconds < BOUND, (seconds, err)
    [closing] = error_lines(err)
    assert "waiting for the monitors" in closing or "cannot reach the cluster" in closing, err
    assert "verify stopped in step '" in closing, err
    if output == "json":
        doc = json.loads(out)  # stdout is still one document
        assert doc["passed"] is False and doc["error"]["step"] in closing
        assert doc["error"]["kind"] in ("timeout", "unreachable")
    else:
        assert "Verify FAILED" in out
    cleanup = cluster.cli("verify", "-f", str(spec), "--cleanup")
    assert cleanup.returncode == 0, cleanup.stdout + cleanup.stderr
    assert state(cluster) == before, cleanup.stdout


def test_a_verify_killed_while_its_monitor_is_gone_leaves_nothing(cluster, spec):
    before = state(cluster)
    verify = spawn(cluster, "verify", "-f", str(spec), *FAST)
    try:
        wait_for_line(verify, "cinder-volume: clone of a volume")
        kill_monitor(cluster)
        time.sleep(1.0)
        verify.send_signal(signal.SIGKILL)  # killed outright: no cleanup of its own
        verify.communicate(timeout=30)
    finally:
        verify.kill()
        start_monitor(cluster)
    assert state(cluster) != before  # it did leave things behind
    cleanup = cluster.cli("verify", "-f", str(spec), "--cleanup")
    assert cleanup.returncode == 0, cleanup.stdout + cleanup.stderr
    assert "image " in cleanup.stdout
    assert state(cluster) == before, cleanup.stdout
    again = cluster.cli("verify", "-f", str(spec), "--cleanup")
    assert "nothing to remove" in again.stdout


def test_cleanup_finds_trash_entries_and_half_made_images(cluster, spec):
    """What a run stopped at any moment may leave besides whole images: an image half
    removed (in the trash under its name) and one half created (listed, no header)."""
    before = state(cluster)
    run = "0badc0de"  # a run long gone: no lock record names it
    trashed = f"volume-{run}{MARKER}000000000001"
    headless = f"{run}{MARKER}000000000002_disk"
    with cluster.admin() as conn:
        layering = conn.features("layering")
        conn.rbd("create", "volume", trashed, 4 << 20, old_format=False, features=layering)
        conn.rbd("trash_move", "volume", trashed)
        conn.rbd("create", "vm", headless, 4 << 20, old_format=False, features=layering)
        with conn.image("vm", headless) as image:
            header = f"rbd_header.{image.id()}"
        with conn.ioctx("vm") as ioctx:
            ioctx.remove_object(header)
    assert state(cluster) != before
    cleanup = cluster.cli("verify", "-f", str(spec), "--cleanup")
    assert cleanup.returncode == 0, cleanup.stdout + cleanup.stderr
    assert f"trash volume/{trashed}" in cleanup.stdout
    assert f"image vm/{headless}" in cleanup.stdout
    assert state(cluster) == before


@pytest.mark.parametrize("when", ["first step done", "in its first round"])
def test_an_apply_that_loses_its_monitor_ends_within_one_timeout(cluster, spec, when):
    box, work = cluster.box, cluster.workdir
    name = f"lost{len(when)}"
    more = work / f"{name}.yaml"
    more.write_text(
        f"cluster: {{conf: {box.conf}, keyring: {box.admin_keyring}}}\n"
        f"pools:\n  {name}-images: {{pg_num: 4}}\n  {name}-vm: {{pg_num: 4}}\n"
        f"services:\n  glance: {{user: {name}-glance, pool: {name}-images}}\n"
        f"  nova: {{user: {name}-nova, pool: {name}-vm}}\n"
        f"keyrings: {{directory: {work}/keys-{name}, mode: '0600'}}\n")
    apply = spawn(cluster, "apply", "-f", str(more), "--yes", *FAST)
    try:
        if when == "first step done":
            wait_for_line(apply, ": done")
        else:  # its plan on stdout: it has connected and is about to change the cluster
            assert apply.stdout.readline()
        kill_monitor(cluster)
        started = time.monotonic()
        out, err = apply.communicate(timeout=BOUND + 60)
        seconds = time.monotonic() - started
    finally:
        apply.kill()
        start_monitor(cluster)
    assert apply.returncode == 5, out + err
    assert seconds < BOUND, (seconds, err)  # one timeout, not one per remaining step
    [closing] = error_lines(err)
    # A round in flight ("apply stopped: ...") or the look after it: either way, the monitors.
    assert "waiting for the monitors" in closing or "the monitors" in err.split(closing)[1], err
    again = cluster.cli("apply", "-f", str(more), "--yes")
    assert again.returncode == 0, again.stdout + again.stderr
