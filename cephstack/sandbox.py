"""A real single-node Ceph cluster (mon, mgr, one memstore OSD) on 127.0.0.1.

Everything lives in one directory: ceph.conf, keyrings, daemon data, run/ (pid files,
admin sockets) and log/. Daemons are stopped by the pids in run/, never by name.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from cephstack.errors import CephstackError

DAEMONS = ("mon.a", "mgr.x", "osd.0")
_BINARIES = {"mon": "ceph-mon", "mgr": "ceph-mgr", "osd": "ceph-osd"}


class SandboxError(CephstackError):
    pass


@dataclass(frozen=True)
class SandboxStatus:
    directory: str
    conf: str
    keyring: str
    port: int | None
    running: dict[str, int | None]  # daemon -> pid, None when not running

    @property
    def up(self) -> bool:
        return all(self.running.values())


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _conf_text(d: Path, fsid: str, port: int) -> str:
    return f"""\
# cephstack sandbox: a throwaway single-node cluster on loopback. Not for production.
[global]
fsid = {fsid}
mon host = v2:127.0.0.1:{port}
public addr = 127.0.0.1
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
auth allow insecure global id reclaim = false
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
run dir = {d}/run
log file = {d}/log/$name.log
[client.admin]
keyring = {d}/ceph.client.admin.keyring
# Per daemon, not global: clients would fight over one admin socket path.
[mon]
mon data = {d}/$name
keyring = {d}/$name/keyring
pid file = {d}/run/$name.pid
admin socket = {d}/run/$name.asok
[mgr]
mgr data = {d}/$name
keyring = {d}/$name/keyring
pid file = {d}/run/$name.pid
admin socket = {d}/run/$name.asok
[osd]
osd data = {d}/$name
keyring = {d}/$name/keyring
pid file = {d}/run/$name.pid
admin socket = {d}/run/$name.asok
osd objectstore = memstore
memstore device bytes = 4294967296
"""


class Sandbox:
    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.dir = Path(directory).absolute()
        self.conf = self.dir / "ceph.conf"
        self.admin_keyring = self.dir / "ceph.client.admin.keyring"

    # -- state ----------------------------------------------------------------

    def port(self) -> int | None:
        if not self.conf.exists():
            return None
        for line in self.conf.read_text().splitlines():
            if line.startswith("mon host"):
                return int(line.rsplit(":", 1)[1])
        return None

    def _pid(self, daemon: str) -> int | None:
        try:
            pid = int((self.dir / "run" / f"{daemon}.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        binary = _BINARIES[daemon.split(".")[0]]
        try:  # a recycled pid of another program is not ours
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            return None
        return pid if os.path.basename(cmdline.decode()) == binary else None

    def status(self) -> SandboxStatus:
        return SandboxStatus(str(self.dir), str(self.conf), str(self.admin_keyring),
                             self.port(), {d: self._pid(d) for d in DAEMONS})

    # -- up -------------------------------------------------------------------

    def up(self, port: int | None = None, timeout: float = 60.0) -> SandboxStatus:
        """Start the sandbox, creating it first if needed. Idempotent."""
        state = self.status()
        if state.up:
            if port is not None and port != state.port:
                raise SandboxError(f"sandbox {self.dir} already runs on port {state.port}, "
                                   f"not {port}", hint="cephstack sandbox down first")
            return state
        if self.conf.exists():
            # A memstore OSD keeps its data in memory only: a stopped sandbox cannot be
            # resumed, so it is created afresh (same directory, same port unless asked).
            port = port or self.port()
            self.down()
            self._wipe()
        self._create(port or free_port(), timeout)
        return self.status()

    def _wipe(self) -> None:
        for name in ("mon.a", "mgr.x", "osd.0", "run"):
            shutil.rmtree(self.dir / name, ignore_errors=True)
        for name in ("ceph.conf", "monmap", "ceph.mon.keyring", "ceph.client.admin.keyring"):
            (self.dir / name).unlink(missing_ok=True)

    def _run(self, *args: str) -> None:
        proc = subprocess.run(args, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SandboxError(f"{' '.join(args[:3])} ... failed (exit {proc.returncode}): "
                               f"{(proc.stderr or proc.stdout).strip()[-800:]}",
                               hint=f"see the logs in {self.dir / 'log'}")

    def _start(self, daemon: str) -> None:
        kind, ident = daemon.split(".")
        if self._pid(daemon) is None:
            self._run(_BINARIES[kind], "-i", ident, "-c", str(self.conf))

    def _connect(self, timeout: float):
        from cephstack.ceph.adapter import CephConnection, ClusterAccess

        return CephConnection(ClusterAccess(str(self.conf), str(self.admin_keyring),
                                            "client.admin", timeout))

    def _create(self, port: int, timeout: float) -> None:
        d = self.dir
        for sub in ("run", "log", "mon.a", "mgr.x", "osd.0"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(d, 0o700)  # holds admin keys
        fsid = str(uuid.uuid4())
        mon_keyring = d / "ceph.mon.keyring"
        self._run("ceph-authtool", "--create-keyring", str(mon_keyring), "--gen-key",
                  "-n", "mon.", "--cap", "mon", "allow *")
        self._run("ceph-authtool", "--create-keyring", str(self.admin_keyring), "--gen-key",
                  "-n", "client.admin", "--cap", "mon", "allow *", "--cap", "osd", "allow *",
                  "--cap", "mgr", "allow *", "--cap", "mds", "allow *")
        self._run("ceph-authtool", str(mon_keyring), "--import-keyring", str(self.admin_keyring))
        self._run("monmaptool", "--create", "--fsid", fsid, "--addv", "a",
                  f"[v2:127.0.0.1:{port}]", str(d / "monmap"))
        # Written last among the set-up files: its presence means "created".
        self.conf.write_text(_conf_text(d, fsid, port))
        self._run("ceph-mon", "--mkfs", "-i", "a", "--monmap", str(d / "monmap"),
                  "--keyring", str(mon_keyring), "-c", str(self.conf))
        self._start("mon.a")
        with self._connect(timeout) as conn:
            # Also in the config database, so clients (cephstack's PG budget) can read them.
            for name in ("osd_pool_default_size", "osd_pool_default_min_size"):
                conn.mon("config set", who="global", name=name, value="1")
            mgr = conn.mon("auth get-or-create", entity="mgr.x",
                           caps=["mon", "allow profile mgr", "osd", "allow *", "mds", "allow *"])
            _write_private(d / "mgr.x" / "keyring",
                           f"[mgr.x]\n\tkey = {mgr[0]['key']}\n")
            self._start("mgr.x")
            osd_uuid = str(uuid.uuid4())
            osd_id = conn.mon("osd new", uuid=osd_uuid)["osdid"]
            self._run("ceph-osd", "-i", str(osd_id), "--mkfs", "--osd-uuid", osd_uuid,
                      "--mkkey", "--no-mon-config", "-c", str(self.conf))
            keyring = (d / f"osd.{osd_id}" / "keyring").read_bytes()
            conn.mon("auth add", inbuf=keyring, entity=f"osd.{osd_id}",
                     caps=["osd", "allow *", "mon", "allow profile osd",
                           "mgr", "allow profile osd"])
            self._start(f"osd.{osd_id}")
            self._wait_osd_up(conn, timeout)

    @staticmethod
    def _wait_osd_up(conn, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while conn.mon("osd stat")["num_up_osds"] < 1:
            if time.monotonic() > deadline:
                raise SandboxError(f"the OSD did not come up within {timeout:g} s")
            time.sleep(0.2)

    # -- down -----------------------------------------------------------------

    def down(self, timeout: float = 30.0) -> list[str]:
        """Stop the sandbox's daemons by pid (OSD first); remove nothing. Returns those stopped."""
        stopped = []
        for daemon in reversed(DAEMONS):
            pid = self._pid(daemon)
            if pid is None:
                continue
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while self._pid(daemon) == pid and time.monotonic() < deadline:
                time.sleep(0.05)
            if self._pid(daemon) == pid:
                os.kill(pid, signal.SIGKILL)
            stopped.append(daemon)
        return stopped


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
