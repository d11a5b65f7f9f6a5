"""fence, unfence and locks with a `clusters:` spec, against two real sandboxes (central and
edge1, test_multicluster's fixture): a compute host that is a Ceph client of both clusters
dies while holding a volume's exclusive lock on each; one `fence ADDR -f spec` blocklists
it on both and breaks both locks, `unfence` lifts both, `locks` shows both; with edge1
down, central is still fenced and edge1's error reported.

Every sandbox client is 127.0.0.1, cephstack's own address, which fence rightly refuses to
cut off. The dead host's clients are therefore made to connect from 127.0.0.2 (a tiny
LD_PRELOAD shim binds their sockets there before connect): a second host on one machine,
so a whole host is fenced, as an operator does, not single client instances."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from cephstack.day2.fence import blocklist_entries
from cephstack.spec.defaults import DEFAULT_SPEC
from tests.integration.test_fence import _line, _stop
from tests.integration.test_multicluster import admin, cli, two  # noqa: F401 - the fixture

ROOT = Path(__file__).parents[2]
MiB = 1 << 20
HOST = "127.0.0.2"  # the dead compute host
ENTRY = f"{HOST}:0/0"  # its blocklist entry
VOLUME_POOL = {"central": "volume", "edge1": "volume-edge1"}

_SHIM = r"""
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>

/* Bind every IPv4 socket to $SOURCE_IP before it connects: the peer sees that address. */
int connect(int fd, const struct sockaddr *addr, socklen_t len) {
    static int (*real)(int, const struct sockaddr *, socklen_t);
    if (!real) real = dlsym(RTLD_NEXT, "connect");
    const char *ip = getenv("SOURCE_IP");
    if (ip && addr && addr->sa_family == AF_INET) {
        struct sockaddr_in src = {.sin_family = AF_INET, .sin_port = 0};
        if (inet_pton(AF_INET, ip, &src.sin_addr) == 1)
            bind(fd, (struct sockaddr *)&src, sizeof src);
    }
    return real(fd, addr, len);
}
"""


@pytest.fixture(scope="module")
def shim(tmp_path_factory) -> Path:
    if not shutil.which("gcc"):
        pytest.skip("gcc is not installed (scripts/bootstrap installs it)")
    where = tmp_path_factory.mktemp("shim")
    (where / "source_ip.c").write_text(_SHIM)
    subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-o", str(where / "source_ip.so"),
                    str(where / "source_ip.c"), "-ldl"], check=True, timeout=60)
    return where / "source_ip.so"


@pytest.fixture(scope="module")
def applied(two):  # noqa: F811 - test_multicluster's fixture
    root, boxes, spec = two
    done = cli(root, "apply", "-f", str(spec), "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    # New pools are skipped by status' reads until the manager reports their PGs.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        seen = json.loads(cli(root, "locks", "-f", str(spec), "--output", "json").stdout)
        if all(p["images"] is not None for c in seen["clusters"].values()
               for p in c["scanned"]["pools"]):
            break
        time.sleep(1)
    else:
        pytest.fail(f"the new pools' PGs were not reported: {seen}")
    return root, boxes, spec


def _crashed_volume(root: Path, box, cluster: str, shim: Path) -> tuple[str, str]:
    """A new Cinder volume on `cluster`, written by a client as Cinder on HOST (its
    exclusive lock taken), which then dies (SIGKILL, no release): (image, its address)."""
    pool, image = VOLUME_POOL[cluster], f"volume-{uuid.uuid4()}"
    with admin(box) as conn:
        conn.rbd("create", pool, image, 8 * MiB, 22, old_format=False,
                 features=conn.features("layering", "exclusive_lock"))
    keyring = root / "keys" / f"{cluster}.client.cinder-volume.keyring"
    holder = subprocess.Popen(
        [sys.executable, "-m", "cephstack.ceph.lockprobe", "hold", str(box.conf),
         str(keyring), "client.cinder-volume", pool, image, "5", "10"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True, env={**os.environ, "PYTHONPATH": str(ROOT), "LD_PRELOAD": str(shim),
                        "SOURCE_IP": HOST})
    try:
        assert _line(holder) == "locked"
    finally:
        _stop(holder)  # SIGKILL: the host died holding the lock
    (_, _, address), = _lockers(box, pool, image)
    assert address.startswith(f"{HOST}:"), address  # the shim made it another host
    return image, address


def _lockers(box, pool: str, image: str) -> list:
    with admin(box) as conn, conn.image(pool, image, read_only=True) as img:
        return list((img.list_lockers() or {}).get("lockers", []))


def _blocklist(box) -> dict[str, str]:
    with admin(box) as conn:
        return blocklist_entries(conn.mon("osd blocklist ls"))[0]


def test_fence_a_host_on_both_clusters_then_unfence(applied, shim):
    root, boxes, spec = applied
    images, addresses = {}, {}
    for name, box in boxes.items():
        images[name], addresses[name] = _crashed_volume(root, box, name, shim)

    # locks: each cluster's locks under its name.
    seen = cli(root, "locks", "-f", str(spec), "--output", "json")
    assert seen.returncode == 0, seen.stderr
    doc = json.loads(seen.stdout)
    assert list(doc["clusters"]) == ["central", "edge1"] and doc["failed"] == []
    for name in boxes:
        held, = [i for i in doc["clusters"][name]["images"] if i["image"] == images[name]]
        assert held["pool"] == VOLUME_POOL[name]
        assert held["openstack"] == f"volume {images[name].removeprefix('volume-')}"
        assert [lk["address"] for lk in held["locks"]] == [addresses[name]]
        assert doc["clusters"][name]["error"] is None
    text = cli(root, "locks", "-f", str(spec)).stdout
    assert "== cluster central (" in text and "== cluster edge1 (" in text

    # Dry run: every cluster's part, nothing changed.
    dry = cli(root, "fence", HOST, "-f", str(spec))
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.count(f"Fence host {HOST}: every Ceph client on it") == 2
    for name in boxes:
        assert f"== cluster {name} (" in dry.stdout
        assert f"({VOLUME_POOL[name]}/{images[name]})" in dry.stdout
    assert dry.stdout.count("Dry run: nothing changed") == 2
    only = json.loads(cli(root, "fence", HOST, "-f", str(spec), "--cluster", "edge1",
                          "--output", "json").stdout)
    assert list(only["clusters"]) == ["edge1"] and only["dry_run"] is True
    for name, box in boxes.items():
        assert ENTRY not in _blocklist(box)
        assert len(_lockers(box, VOLUME_POOL[name], images[name])) == 1

    # --yes: blocklisted on both, both locks broken, one document.
    done = cli(root, "fence", HOST, "-f", str(spec), "--yes", "--expire", "10m",
               "--output", "json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["dry_run"] is False and doc["failed"] == []
    for name, box in boxes.items():
        part = doc["clusters"][name]
        assert part["freed"] == [f"{VOLUME_POOL[name]}/{images[name]}"]
        assert part["targets"][0]["blocklist_entry"] == ENTRY
        assert part["targets"][0]["blocklisted_until"] == _blocklist(box)[ENTRY]
        assert _lockers(box, VOLUME_POOL[name], images[name]) == []

    # unfence --cluster: only there; then the rest.
    first = cli(root, "unfence", HOST, "-f", str(spec), "--cluster", "central", "--yes")
    assert first.returncode == 0, first.stderr
    assert f"Removed blocklist entry {ENTRY}" in first.stdout
    assert ENTRY not in _blocklist(boxes["central"]) and ENTRY in _blocklist(boxes["edge1"])
    rest = cli(root, "unfence", HOST, "-f", str(spec), "--yes", "--output", "json")
    assert rest.returncode == 0, rest.stderr
    doc = json.loads(rest.stdout)
    assert doc["clusters"]["central"]["targets"][0]["removed"] is False  # nothing left there
    assert doc["clusters"]["edge1"]["targets"][0]["removed"] is True
    for box in boxes.values():
        assert ENTRY not in _blocklist(box)


def test_bad_choices_exit_2_before_any_change(applied, tmp_path):
    root, boxes, spec = applied
    unknown = cli(root, "fence", HOST, "-f", str(spec), "--cluster", "edge9", "--yes")
    assert unknown.returncode == 2
    assert "--cluster edge9: no such cluster" in unknown.stderr
    assert "central, edge1" in unknown.stderr
    override = cli(root, "locks", "-f", str(spec), "--conf", str(boxes["edge1"].conf))
    assert override.returncode == 2 and "--conf" in override.stderr
    one = tmp_path / "one.yaml"
    one.write_text(DEFAULT_SPEC.replace("/etc/ceph/ceph.conf", str(boxes["central"].conf)))
    alone = cli(root, "unfence", HOST, "-f", str(one), "--cluster", "central")
    assert alone.returncode == 2 and "has one cluster" in alone.stderr
    # 127.0.0.1 is cephstack's own address on both: refused before any cluster changes.
    own = cli(root, "fence", "127.0.0.1", "-f", str(spec), "--yes")
    assert own.returncode == 2, own.stdout + own.stderr
    assert "central: 127.0.0.1 would cut off this cephstack process itself" in own.stderr
    assert "edge1: 127.0.0.1 would cut off" in own.stderr
    assert "127.0.0.1:0/0" not in _blocklist(boxes["central"])
    for box in boxes.values():
        assert ENTRY not in _blocklist(box)


def test_a_cluster_down_is_reported_and_the_other_fenced(applied, shim):
    """Last in this module: edge1 stays down."""
    root, boxes, spec = applied
    image, _ = _crashed_volume(root, boxes["central"], "central", shim)
    boxes["edge1"].down()
    run = cli(root, "fence", HOST, "-f", str(spec), "--yes", "--output", "json")
    assert run.returncode == 3, run.stdout + run.stderr  # edge1's: unreachable
    doc = json.loads(run.stdout)
    assert doc["failed"] == ["edge1"]
    assert doc["clusters"]["edge1"]["error"]["kind"] == "unreachable"
    assert "error: cluster edge1:" in run.stderr
    assert doc["clusters"]["central"]["freed"] == [f"volume/{image}"]
    assert ENTRY in _blocklist(boxes["central"])
    assert _lockers(boxes["central"], "volume", image) == []
    text = cli(root, "unfence", HOST, "-f", str(spec), "--yes")
    assert text.returncode == 3
    assert "error: edge1:" in text.stdout and f"Removed blocklist entry {ENTRY}" in text.stdout
    assert "central: removed 1 blocklist entr(ies); edge1: FAILED" in text.stdout
    assert ENTRY not in _blocklist(boxes["central"])
