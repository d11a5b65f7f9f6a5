"""fence, unfence and locks against a real sandbox: a guest disk held by a QEMU-like client
as Nova (cephstack.ceph.lockprobe) whose host crashes (SIGKILL) or is cut off but alive.
On one machine every client is 127.0.0.1, so the tests fence client instances
(IP:PORT/NONCE); fencing the host itself is refused, since it is cephstack's own."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
MiB = 1 << 20
TAKEOVER_BOUND = 15.0  # seconds: well under osd_client_watch_timeout (30 s), which a
# takeover without the fence would wait for


@pytest.fixture(scope="module")
def spec(cluster):
    path = cluster.write_spec()
    done = cluster.cli("apply", "-f", str(path), "--yes")
    assert done.returncode == 0, done.stderr
    # Status' reads (which fence and locks use) skip a pool whose PGs the manager has not
    # seen yet, as new pools are for a few seconds: wait until every pool is read.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        seen = json.loads(cluster.cli("locks", "-f", str(path), "--output", "json").stdout)
        if all(p["images"] is not None for p in seen["scanned"]["pools"]):
            break
        time.sleep(1)
    else:
        pytest.fail(f"the new pools' PGs were not reported: {seen['scanned']}")
    return path


def _keyring(cluster) -> str:
    return str(cluster.workdir / "keys" / "ceph.client.nova.keyring")


def _probe(cluster, mode: str, image: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cephstack.ceph.lockprobe", mode, str(cluster.box.conf),
         _keyring(cluster), "client.nova", "vm", image, "5", "10"],
        stdin=subprocess.PIPE if mode == "serve" else subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)})


def _line(proc: subprocess.Popen[str], timeout: float = 60) -> str:
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline().strip() if ready else ""


def _guest_disk(cluster, mode: str) -> tuple[str, subprocess.Popen[str], str]:
    """A new guest disk `<uuid>_disk` in the Nova pool, opened by a client as Nova that
    took its exclusive lock and wrote: (image, that client, its address)."""
    image = f"{uuid.uuid4()}_disk"
    with cluster.admin() as conn:
        conn.rbd("create", "vm", image, 8 * MiB, 22, old_format=False,
                 features=conn.features("layering", "exclusive_lock"))
        holder = _probe(cluster, mode, image)
        line = _line(holder)
        if line != "locked":
            holder.kill()
            holder.wait()
            pytest.fail(f"the guest's client did not take the lock: {line!r}")
        with conn.image("vm", image, read_only=True) as img:
            (_, _, address), = img.list_lockers()["lockers"]
    return image, holder, address


def _lockers(cluster, image: str) -> list:
    with cluster.admin() as conn, conn.image("vm", image, read_only=True) as img:
        return list((img.list_lockers() or {}).get("lockers", []))


def _blocklist(cluster) -> dict[str, str]:
    from cephstack.day2.fence import blocklist_entries

    with cluster.admin() as conn:
        return blocklist_entries(conn.mon("osd blocklist ls"))[0]


def _take_over(cluster, image: str) -> tuple[float, str]:
    """Another host, as Nova, writes to the disk: (seconds, what it printed)."""
    started = time.monotonic()
    taker = _probe(cluster, "take", image)
    try:
        out, _ = taker.communicate(timeout=60)
    finally:
        if taker.poll() is None:
            taker.kill()
            taker.wait()
    assert taker.returncode == 0, out
    return time.monotonic() - started, out.strip()


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_fence_a_crashed_guest_then_unfence(cluster, spec):
    image, holder, address = _guest_disk(cluster, "hold")
    holder.kill()  # SIGKILL: the compute host crashed, no release
    holder.wait()
    disk = f"instance {image.removesuffix('_disk')} disk"

    # Dry run (the default): lists the disk in OpenStack terms, changes nothing.
    dry = cluster.cli("fence", address, "-f", str(spec))
    assert dry.returncode == 0, dry.stderr
    assert f"Fence client instance {address}" in dry.stdout
    assert f"{disk} (vm/{image})" in dry.stdout
    assert "Dry run: nothing changed" in dry.stdout
    data = json.loads(cluster.cli("fence", address, "-f", str(spec), "--dry-run",
                                  "--output", "json").stdout)
    assert data["dry_run"] is True
    hit, = [i for i in data["images"] if i["image"] == image]
    assert hit["openstack"] == disk and hit["services"] == ["nova"]
    assert [lk["address"] for lk in hit["locks"]] == [address]
    assert address not in _blocklist(cluster)
    assert [lk[2] for lk in _lockers(cluster, image)] == [address]

    # --yes: blocklisted, lock broken, the freed disk reported.
    done = cluster.cli("fence", address, "-f", str(spec), "--yes", "--expire", "10m",
                       "--output", "json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["dry_run"] is False and result["freed"] == [f"vm/{image}"]
    until = _blocklist(cluster)[address]
    left = datetime.strptime(until, "%Y-%m-%dT%H:%M:%S.%f%z") - datetime.now(UTC)
    assert 540 < left.total_seconds() <= 600  # --expire 10m
    assert result["targets"][0]["blocklisted_until"] == until
    assert _lockers(cluster, image) == []

    # Another host takes the disk over at once, not after the watch timeout.
    seconds, _ = _take_over(cluster, image)
    assert seconds < TAKEOVER_BOUND

    # unfence: a dry run first, then the entry goes.
    dry = cluster.cli("unfence", address, "-f", str(spec))
    assert dry.returncode == 0 and f"Would remove blocklist entry {address}" in dry.stdout
    assert address in _blocklist(cluster)
    gone = cluster.cli("unfence", address, "-f", str(spec), "--yes")
    assert gone.returncode == 0, gone.stderr
    assert f"Removed blocklist entry {address}" in gone.stdout
    assert address not in _blocklist(cluster)
    again = cluster.cli("unfence", address, "--yes", "--conf", str(cluster.box.conf),
                        "--keyring", str(cluster.box.admin_keyring))
    assert again.returncode == 0 and "not in the blocklist" in again.stdout


def test_fence_a_partitioned_but_alive_host(cluster, spec):
    """The host is cut off from the cloud but its QEMU still runs: once fenced, its writes
    are refused (EBLOCKLISTED), and the new host writes at once."""
    image, holder, address = _guest_disk(cluster, "serve")
    try:
        holder.stdin.write("write\n")
        holder.stdin.flush()
        assert _line(holder) == "ok"  # alive and writing
        # Without a spec: the pools and services are recognised from the cluster.
        access = ["--conf", str(cluster.box.conf), "--keyring", str(cluster.box.admin_keyring)]
        seen = json.loads(cluster.cli("locks", *access, "--output", "json").stdout)
        held, = [i for i in seen["images"] if i["image"] == image]
        assert held["openstack"] == f"instance {image.removesuffix('_disk')} disk"
        assert [(lk["address"], lk["state"]) for lk in held["locks"]] == [(address, "live")]
        assert held["watchers"] == [{"address": address, "blocklisted": False}]

        dry = cluster.cli("fence", address, *access)
        assert "Caution: 1 lock holder(s) above still watch their image" in dry.stdout
        done = cluster.cli("fence", address, *access, "--yes")
        assert done.returncode == 0, done.stderr
        assert f"Blocklisted {address} until" in done.stdout
        assert f"vm/{image}): lock of" in done.stdout and "broken" in done.stdout

        seconds, _ = _take_over(cluster, image)
        assert seconds < TAKEOVER_BOUND
        holder.stdin.write("write\n")
        holder.stdin.flush()
        refused = _line(holder)
        assert refused.startswith("error errno=108"), refused  # EBLOCKLISTED (ESHUTDOWN)

        after = json.loads(cluster.cli("locks", *access, "--output", "json").stdout)
        assert not [i for i in after["images"] if i["image"] == image]  # nothing holds it
    finally:
        _stop(holder)
    assert cluster.cli("unfence", address, *access, "--yes").returncode == 0
    assert address not in _blocklist(cluster)


def test_fencing_this_host_is_refused(cluster, spec):
    """Every sandbox client is 127.0.0.1, cephstack's own connection included: blocklisting
    the host would cut cephstack off half-way, so it is refused before anything changes."""
    before = _blocklist(cluster)
    proc = cluster.cli("fence", "127.0.0.1", "-f", str(spec), "--yes")
    assert proc.returncode == 2
    assert "would cut off this cephstack process itself" in proc.stderr
    assert _blocklist(cluster) == before


def _own_address(vec: dict) -> str:
    """The first entry of an addrvec as fence takes it: IP:PORT/NONCE."""
    first = vec["addrvec"][0]
    return f"{first['addr']}/{first['nonce']}"


def test_fencing_a_daemon_or_no_host_is_refused_before_any_change(cluster, spec):
    """Issue 18: the active manager's and an OSD's own addresses are refused, naming the
    daemon (--force would fence them); 0.0.0.0, 0.0.0.0:0/0 and :: are refused even with
    --force. The blocklist is the same before and after each refusal."""
    with cluster.admin() as conn:
        mgr = _own_address(conn.mon("mgr dump")["active_addrs"])
        osd = _own_address(conn.mon("osd dump")["osds"][0]["public_addrs"])
    for address, daemon in ((mgr, "mgr.x"), (osd, "osd.0")):
        before = _blocklist(cluster)
        proc = cluster.cli("fence", address, "-f", str(spec), "--yes")
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert f"{address} is an address of {daemon}" in proc.stderr
        assert "--force fences a daemon's address anyway" in proc.stderr
        doc = json.loads(cluster.cli("fence", address, "-f", str(spec), "--yes", "--output",
                                     "json").stdout)
        assert doc["error"]["kind"] == "invalid-arguments" and daemon in doc["error"]["message"]
        assert _blocklist(cluster) == before and len(_blocklist(cluster)) == len(before)
    # --force without --yes: a dry run that names what it would fence anyway
    forced = cluster.cli("fence", mgr, "-f", str(spec), "--force")
    assert forced.returncode == 0, forced.stderr
    assert f"Fenced anyway (--force): {mgr} is an address of mgr.x" in forced.stdout
    for address in ("0.0.0.0", "0.0.0.0:0/0", "::"):
        before = _blocklist(cluster)
        proc = cluster.cli("fence", address, "-f", str(spec), "--yes", "--force")
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "is the unspecified address, not a host" in proc.stderr
        assert _blocklist(cluster) == before and len(_blocklist(cluster)) == len(before)


def test_a_name_with_control_characters_is_escaped_in_text(cluster, spec):
    """Issue 18: an image name holding ESC (librados allows it) goes to the terminal
    escaped in fence's and locks' text, and as it is in their JSON."""
    image = f"evil\x1b[2J{uuid.uuid4().hex[:8]}_disk"
    with cluster.admin() as conn:
        conn.rbd("create", "vm", image, 8 * MiB, 22, old_format=False,
                 features=conn.features("layering", "exclusive_lock"))
    holder = _probe(cluster, "hold", image)
    try:
        assert _line(holder) == "locked"
        (_, _, address), = _lockers(cluster, image)
    finally:
        _stop(holder)
    shown = cluster.cli("fence", address, "-f", str(spec))
    assert shown.returncode == 0, shown.stderr
    assert "\x1b" not in shown.stdout and image.replace("\x1b", "\\x1b") in shown.stdout
    held = cluster.cli("locks", "-f", str(spec))
    assert "\x1b" not in held.stdout and image.replace("\x1b", "\\x1b") in held.stdout
    doc = json.loads(cluster.cli("fence", address, "-f", str(spec), "--output", "json").stdout)
    assert [i["image"] for i in doc["images"]] == [image]
