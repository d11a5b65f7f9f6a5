"""A real single-node Ceph cluster (mon, mgr, one or more memstore OSDs) on 127.0.0.1.

Everything lives in one directory: ceph.conf, keyrings, daemon data, run/ (pid files,
admin sockets) and log/. Daemons are stopped by the pids in run/, never by name, and only
when the process's command line names this sandbox's ceph.conf (a pid may be reused).
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

DAEMONS = ("mon.a", "mgr.x", "osd.0")  # a sandbox with the default single OSD
DEVICE_CLASSES = ("hdd", "ssd")  # osd.N gets DEVICE_CLASSES[N % 2]
MAX_OSDS = 8
_BINARIES = {"mon": "ceph-mon", "mgr": "ceph-mgr", "osd": "ceph-osd"}
_GIB = 1 << 30


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


def _conf_text(d: Path, fsid: str, port: int, osds: int) -> str:
    # Memstore reserves nothing up front; the cap bounds what tests can fill.
    device_bytes = 4 * _GIB if osds == 1 else _GIB
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
# Replicas go to OSDs, not hosts: size 3 fits on 3 OSDs of this one host.
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
memstore device bytes = {device_bytes}
"""


def _arg_after(args: list[str], flag: str) -> str | None:
    for i, arg in enumerate(args[:-1]):
        if arg == flag:
            return args[i + 1]
    return None


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

    def osds(self) -> list[str]:
        """The sandbox's OSDs (osd.0, osd.1, ...), from their data directories."""
        found = [p.name for p in self.dir.glob("osd.*")
                 if p.is_dir() and p.name.removeprefix("osd.").isdigit()]
        return sorted(found, key=lambda n: int(n.removeprefix("osd."))) or ["osd.0"]

    def daemons(self) -> tuple[str, ...]:
        return ("mon.a", "mgr.x", *self.osds())

    def _pidfile(self, daemon: str) -> Path:
        return self.dir / "run" / f"{daemon}.pid"

    def _ours(self, pid: int, daemon: str) -> bool:
        """Whether `pid` runs this sandbox's `daemon`: its binary, its id and this ceph.conf
        (a recycled pid, or the same daemon of another sandbox, is not ours)."""
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return False
        args = [a.decode(errors="replace") for a in raw.split(b"\0") if a]
        kind, ident = daemon.split(".", 1)
        return (bool(args) and os.path.basename(args[0]) == _BINARIES[kind]
                and _arg_after(args, "-i") == ident and _arg_after(args, "-c") == str(self.conf))

    def _pid(self, daemon: str) -> int | None:
        try:
            pid = int(self._pidfile(daemon).read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if pid > 0 and self._ours(pid, daemon) else None

    def status(self) -> SandboxStatus:
        return SandboxStatus(str(self.dir), str(self.conf), str(self.admin_keyring),
                             self.port(), {d: self._pid(d) for d in self.daemons()})

    # -- up -------------------------------------------------------------------

    def up(self, port: int | None = None, timeout: float = 60.0,
           osds: int | None = None) -> SandboxStatus:
        """Start the sandbox, creating it first if needed (with `osds` OSDs, default 1).
        Idempotent."""
        if osds is not None and not 1 <= osds <= MAX_OSDS:
            raise SandboxError(f"--osds must be from 1 to {MAX_OSDS}, got {osds}")
        state = self.status()
        if state.up:
            if port is not None and port != state.port:
                raise SandboxError(f"sandbox {self.dir} already runs on port {state.port}, "
                                   f"not {port}", hint="cephstack sandbox down first")
            if osds is not None and osds != len(self.osds()):
                raise SandboxError(f"sandbox {self.dir} already runs {len(self.osds())} "
                                   f"OSD(s), not {osds}", hint="cephstack sandbox down first")
            return state
        if self.conf.exists():
            # A memstore OSD keeps its data in memory only: a stopped sandbox cannot be
            # resumed, so it is created afresh (same directory, port and OSD count unless
            # asked otherwise).
            port = port or self.port()
            osds = osds or len(self.osds())
            self.down()
            self._wipe()
        self._create(port or free_port(), osds or 1, timeout)
        return self.status()

    def _wipe(self) -> None:
        for name in ("mon.a", "mgr.x", *self.osds(), "run"):
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
        kind, ident = daemon.split(".", 1)
        if self._pid(daemon) is None:
            self._run(_BINARIES[kind], "-i", ident, "-c", str(self.conf))

    def connect(self, timeout: float = 10.0):
        """An admin connection to this sandbox (a CephConnection)."""
        from cephstack.ceph.adapter import CephConnection, ClusterAccess

        return CephConnection(ClusterAccess(str(self.conf), str(self.admin_keyring),
                                            "client.admin", timeout))

    def _create(self, port: int, osds: int, timeout: float) -> None:
        d = self.dir
        for sub in ("run", "log", "mon.a", "mgr.x"):
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
        self.conf.write_text(_conf_text(d, fsid, port, osds))
        self._run("ceph-mon", "--mkfs", "-i", "a", "--monmap", str(d / "monmap"),
                  "--keyring", str(mon_keyring), "-c", str(self.conf))
        self._start("mon.a")
        with self.connect(timeout) as conn:
            # Also in the config database, so clients (cephstack's PG budget) can read them.
            conn.concurrently([lambda n=name: conn.mon("config set", who="global", name=n,
                                                       value="1")
                               for name in ("osd_pool_default_size",
                                            "osd_pool_default_min_size")])
            mgr = conn.mon("auth get-or-create", entity="mgr.x",
                           caps=["mon", "allow profile mgr", "osd", "allow *", "mds", "allow *"])
            _write_private(d / "mgr.x" / "keyring",
                           f"[mgr.x]\n\tkey = {mgr[0]['key']}\n")
            self._start("mgr.x")
            uuids = [str(uuid.uuid4()) for _ in range(osds)]
            # At once: the monitor folds them into one OSD map commit.
            ids = [r["osdid"] for r in conn.concurrently(
                [lambda u=u: conn.mon("osd new", uuid=u) for u in uuids])]
            conn.concurrently([lambda i=i, u=u: self._make_osd(conn, i, u)
                               for i, u in zip(ids, uuids, strict=True)])
            self._wait_osds_up(conn, len(ids), timeout)

    def _make_osd(self, conn, osd_id: int, osd_uuid: str) -> None:
        data = self.dir / f"osd.{osd_id}"
        data.mkdir(exist_ok=True)
        self._run("ceph-osd", "-i", str(osd_id), "--mkfs", "--osd-uuid", osd_uuid,
                  "--mkkey", "--no-mon-config", "-c", str(self.conf))
        # The store's meta file the OSD reads on boot to set its class in CRUSH (as
        # ceph-volume writes it): no CRUSH edit after start.
        (data / "crush_device_class").write_text(DEVICE_CLASSES[osd_id % len(DEVICE_CLASSES)])
        conn.mon("auth add", inbuf=(data / "keyring").read_bytes(), entity=f"osd.{osd_id}",
                 caps=["osd", "allow *", "mon", "allow profile osd", "mgr", "allow profile osd"])
        self._start(f"osd.{osd_id}")

    @staticmethod
    def _wait_osds_up(conn, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while (up := conn.mon("osd stat")["num_up_osds"]) < count:
            if time.monotonic() > deadline:
                raise SandboxError(f"{up} of {count} OSD(s) came up within {timeout:g} s")
            time.sleep(0.2)

    # -- one daemon -------------------------------------------------------------

    def stop_daemon(self, daemon: str, timeout: float = 30.0) -> bool:
        """Stop one daemon of this sandbox (e.g. "osd.1"); an OSD is also marked down in
        the OSD map at once. Returns whether it was running."""
        if daemon not in self.daemons():
            raise SandboxError(f"the sandbox {self.dir} has no daemon {daemon}")
        stopped = bool(self._stop([daemon], timeout))
        if stopped and daemon.startswith("osd.") and self._pid("mon.a") is not None:
            with self.connect(10) as conn:
                conn.mon("osd down", ids=[daemon])
                self._wait_osd(conn, daemon, up=False, timeout=timeout)
        return stopped

    def start_daemon(self, daemon: str, timeout: float = 60.0) -> None:
        """Start one stopped daemon of this sandbox; for an OSD, wait until it is up. A
        memstore OSD comes back empty of the data it held, which is fine for tests."""
        if daemon not in self.daemons():
            raise SandboxError(f"the sandbox {self.dir} has no daemon {daemon}")
        self._start(daemon)
        if daemon.startswith("osd."):
            with self.connect(10) as conn:
                self._wait_osd(conn, daemon, up=True, timeout=timeout)

    @staticmethod
    def _wait_osd(conn, daemon: str, up: bool, timeout: float) -> None:
        osd_id = int(daemon.removeprefix("osd."))
        deadline = time.monotonic() + timeout
        while True:
            osds = {o["osd"]: o for o in conn.mon("osd dump")["osds"]}
            if bool(osds.get(osd_id, {}).get("up")) == up:
                return
            if time.monotonic() > deadline:
                raise SandboxError(f"{daemon} is not {'up' if up else 'down'} after "
                                   f"{timeout:g} s")
            time.sleep(0.2)

    # -- down -----------------------------------------------------------------

    def down(self, timeout: float = 30.0) -> list[str]:
        """Stop the sandbox's daemons by pid (OSDs, then mgr, then mon); remove nothing but
        their pid files. Returns those stopped."""
        return (self._stop(self.osds(), timeout) + self._stop(["mgr.x"], timeout)
                + self._stop(["mon.a"], timeout))

    def _stop(self, daemons: list[str], timeout: float) -> list[str]:
        """SIGTERM the given daemons at once, SIGKILL those still running at the deadline.
        A pid file whose process is gone or is not ours (pid reuse) is stale: removed."""
        running = {}
        for daemon in daemons:
            pid = self._pid(daemon)
            if pid is None or not self._signal(pid, daemon, signal.SIGTERM):
                self._pidfile(daemon).unlink(missing_ok=True)
                continue
            running[daemon] = pid
        deadline = time.monotonic() + timeout
        while any(self._ours(p, d) for d, p in running.items()) and time.monotonic() < deadline:
            time.sleep(0.05)
        for daemon, pid in running.items():
            if self._signal(pid, daemon, signal.SIGKILL):
                kill_deadline = time.monotonic() + 5
                while self._ours(pid, daemon) and time.monotonic() < kill_deadline:
                    time.sleep(0.05)
            self._pidfile(daemon).unlink(missing_ok=True)
        return list(running)

    def _signal(self, pid: int, daemon: str, sig: int) -> bool:
        """Send `sig` only if `pid` still runs this sandbox's `daemon`. Through a pidfd:
        were the pid recycled between the check and the signal, nothing would be hit."""
        try:
            pidfd: int | None = os.pidfd_open(pid)
        except ProcessLookupError:
            return False
        except OSError:  # a kernel without pidfds
            pidfd = None
        try:
            if not self._ours(pid, daemon):
                return False
            if pidfd is None:
                os.kill(pid, sig)
            else:
                signal.pidfd_send_signal(pidfd, sig)
            return True
        except ProcessLookupError:
            return False
        finally:
            if pidfd is not None:
                os.close(pidfd)


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
