"""Integration fixtures: a real sandbox cluster per test module, always stopped."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cephstack.ceph.adapter import CephConnection, ClusterAccess
from cephstack.sandbox.cluster import Sandbox
from cephstack.spec.defaults import DEFAULT_SPEC


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:  # everything here needs a real cluster: `-m "not slow"` skips it
        if "integration" in item.nodeid:
            item.add_marker(pytest.mark.slow)


@dataclass
class Cluster:
    box: Sandbox
    workdir: Path

    def admin(self) -> CephConnection:
        return CephConnection(ClusterAccess(str(self.box.conf), str(self.box.admin_keyring)))

    def connect_as(self, entity: str, keyring: str) -> CephConnection:
        return CephConnection(ClusterAccess(str(self.box.conf), keyring, entity, 5))

    def keys(self) -> list[str]:
        with self.admin() as conn:
            return [e["key"] for e in conn.mon("auth ls")["auth_dump"]]

    def write_spec(self, name: str = "cephstack.yaml", text: str | None = None) -> Path:
        """The default spec pointed at this sandbox, keyrings inside the work dir."""
        text = DEFAULT_SPEC if text is None else text
        text = (text.replace("/etc/ceph/ceph.conf", str(self.box.conf))
                .replace("/etc/ceph/ceph.client.admin.keyring", str(self.box.admin_keyring))
                .replace("/var/openstack/ceph", str(self.workdir / "keys")))
        path = self.workdir / name
        path.write_text(text)
        return path

    def outage(self):
        """A mirroring primary going away and coming back (cephstack.verify.drill.Outage):
        its monitor, manager and rbd-mirror stopped; its memstore OSD kept, as a restart
        would lose its data."""
        from cephstack.verify.drill import Outage

        stopped = ["mon.a", "mgr.x", f"client.rbd-mirror.{self.box.cluster}"]

        def cut() -> None:
            for daemon in reversed(stopped):
                self.box.stop_daemon(daemon)

        def restore() -> None:
            for daemon in stopped[:2]:
                self.box.start_daemon(daemon)
            self.box.start_rbd_mirror()

        return Outage(cut, restore)

    def cli(self, *args: str, check_keys: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the real CLI as a process; assert no cephx key reached its output."""
        proc = subprocess.run([sys.executable, "-m", "cephstack", *args], capture_output=True,
                              text=True, cwd=self.workdir, timeout=300,
                              env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
        if check_keys:
            for key in self.keys():
                assert key not in proc.stdout and key not in proc.stderr, "a key was printed"
        return proc


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("cluster")
    box = Sandbox(root / "sandbox")
    try:
        box.up()
        yield Cluster(box, root)
    finally:
        box.down()


@pytest.fixture(scope="module")
def two_clusters(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, Cluster]]:
    """Two sandboxes, clusters "site-a" and "site-b" (a directory each), each running an
    rbd-mirror daemon as client.rbd-mirror.<site>; both stopped afterwards."""
    clusters = []
    try:
        for site in ("site-a", "site-b"):
            root = tmp_path_factory.mktemp(site)
            box = Sandbox(root / "sandbox", cluster=site)
            clusters.append(Cluster(box, root))
            box.up()
            box.start_rbd_mirror()
        yield clusters[0], clusters[1]
    finally:
        for c in clusters:  # the daemons first: each waits on its peer when stopping
            for daemon in c.box.mirror_daemons():
                c.box.stop_daemon(daemon)
        for c in clusters:
            c.box.down()


@pytest.fixture
def libvirtd(tmp_path):
    """A private libvirtd with only the secret driver, on its own socket."""
    if not shutil.which("libvirtd"):
        pytest.skip("libvirtd is not installed (scripts/bootstrap installs it)")
    drivers = tmp_path / "drivers"
    drivers.mkdir()
    for so in Path("/usr/lib/x86_64-linux-gnu/libvirt/connection-driver").glob(
            "libvirt_driver_secret.so"):
        (drivers / so.name).symlink_to(so)
    run = tmp_path / "run"
    run.mkdir()
    conf = tmp_path / "libvirtd.conf"
    conf.write_text(f'unix_sock_dir = "{run}"\nauth_unix_rw = "none"\nauth_unix_ro = "none"\n')
    proc = subprocess.Popen(["libvirtd", "-f", str(conf), "-p", str(run / "pid")],
                            env={**os.environ, "LIBVIRT_DRIVER_DIR": str(drivers)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not (run / "libvirt-sock").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    try:
        yield f"secret:///system?socket={run}/libvirt-sock"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
