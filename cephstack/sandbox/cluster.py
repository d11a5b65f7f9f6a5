"""A real single-node Ceph cluster (mon, mgr, one or more memstore OSDs, optionally an
rbd-mirror daemon) on 127.0.0.1.

Everything lives in one directory: NAME.conf, keyrings, daemon data, run/ (pid files,
admin sockets) and log/; NAME is the cluster name, "ceph" by default. One cluster per
directory: two clusters (RBD mirroring) are two sandboxes in two directories, so their
daemon data, pid files and logs can never collide and one is wiped without the other.
Daemons are stopped by the pids in run/, never by name, and only when the process's
command line names this sandbox's conf file (a pid may be reused).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from cephstack.errors import (
    SandboxArgumentError,
)
from cephstack.sandbox.make import SandboxError, conf_text, crush_map
from cephstack.sandbox.proc import (
    command_line,
    is_ours,
    pid_file,
    running_pid,
    stop_daemons,
)
from cephstack.sandbox.release import HOST, ensure_root, in_root, root_env, root_path, uses_host
from cephstack.sandbox.release import release as known_release

DAEMONS = ("mon.a", "mgr.x", "osd.0")  # a sandbox with the default single OSD
DEVICE_CLASSES = ("hdd", "ssd")  # osd.N gets DEVICE_CLASSES[N % 2]
MAX_OSDS = 8
# The one client daemon a sandbox runs is rbd-mirror, as "client.rbd-mirror.<site>".
_MIRROR_PREFIX = "client.rbd-mirror."
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")


@dataclass(frozen=True)
class SandboxStatus:
    directory: str
    conf: str
    keyring: str
    port: int | None
    running: dict[str, int | None]  # daemon -> pid, None when not running
    cluster: str = "ceph"
    release: str = HOST  # a Ceph release run from its root, or the host's own packages

    @property
    def up(self) -> bool:
        """The cluster itself runs (an rbd-mirror daemon is extra: see `running`)."""
        return all(pid for d, pid in self.running.items() if not d.startswith(_MIRROR_PREFIX))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _check_name(what: str, name: str) -> str:
    if not _NAME.fullmatch(name):
        raise SandboxArgumentError(f"invalid {what} {name!r}: letters, digits, '-' and '_' only, "
                           "starting with a letter or digit, at most 63 characters")
    return name


class Sandbox:
    def __init__(self, directory: str | os.PathLike[str], cluster: str = "ceph",
                 release: str | None = None) -> None:
        """`release`: pacific, reef, tentacle (run from that release's root unless the
        host's own packages are that release), or "host"; default: the one the sandbox
        was created with, else the host's."""
        self.dir = Path(directory).absolute()
        self.cluster = _check_name("cluster name", cluster)
        self.conf = self.dir / f"{cluster}.conf"
        self.admin_keyring = self.dir / f"{cluster}.client.admin.keyring"
        self.release = release or self.recorded_release() or HOST
        if self.release != HOST:
            known_release(self.release)  # an unknown name is refused here
        self.root = None if uses_host(self.release) else root_path(self.release)

    def recorded_release(self) -> str | None:
        """The release this sandbox was created with (DIR/release), if any."""
        try:
            return (self.dir / "release").read_text().strip() or None
        except OSError:
            return None

    def mirror_keyring(self, site: str) -> Path:
        """The keyring of the rbd-mirror daemon's own user, client.rbd-mirror.<site>."""
        return self.dir / f"{self.cluster}.{_MIRROR_PREFIX}{site}.keyring"

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

    def mirror_daemons(self) -> list[str]:
        """The rbd-mirror daemons set up here (by their keyrings): client.rbd-mirror.<site>."""
        prefix = f"{self.cluster}."
        return sorted(p.name.removeprefix(prefix).removesuffix(".keyring")
                      for p in self.dir.glob(f"{prefix}{_MIRROR_PREFIX}*.keyring"))

    def daemons(self) -> tuple[str, ...]:
        return ("mon.a", "mgr.x", *self.osds(), *self.mirror_daemons())

    def _pidfile(self, daemon: str) -> Path:
        return pid_file(self.dir, daemon)

    def _ours(self, pid: int, daemon: str) -> bool:
        return is_ours(pid, daemon, self.conf)

    def _stop(self, daemons: list[str], timeout: float) -> list[str]:
        return stop_daemons(self.dir, self.conf, daemons, timeout)

    def _pid(self, daemon: str) -> int | None:
        return running_pid(self.dir, self.conf, daemon)

    def status(self) -> SandboxStatus:
        return SandboxStatus(str(self.dir), str(self.conf), str(self.admin_keyring),
                             self.port(), {d: self._pid(d) for d in self.daemons()},
                             self.cluster, self.recorded_release() or self.release)

    # -- up -------------------------------------------------------------------

    def up(self, port: int | None = None, timeout: float = 60.0,
           osds: int | None = None, log=None) -> SandboxStatus:
        """Start the sandbox, creating it first if needed (with `osds` OSDs, default 1).
        Idempotent. A start that fails stops every daemon it started. `log`: progress
        lines (a release root's first build)."""
        if osds is not None and not 1 <= osds <= MAX_OSDS:
            raise SandboxError(f"--osds must be from 1 to {MAX_OSDS}, got {osds}")
        state = self.status()
        if state.up and state.release != self.release:
            raise SandboxError(f"sandbox {self.dir} already runs {state.release}, not "
                               f"{self.release}", hint="cephstack sandbox down first")
        if state.up:
            if port is not None and port != state.port:
                raise SandboxError(f"sandbox {self.dir} already runs on port {state.port}, "
                                   f"not {port}", hint="cephstack sandbox down first")
            if osds is not None and osds != len(self.osds()):
                raise SandboxError(f"sandbox {self.dir} already runs {len(self.osds())} "
                                   f"OSD(s), not {osds}", hint="cephstack sandbox down first")
            for daemon in self.mirror_daemons():  # one that died is started again
                self.start_rbd_mirror(daemon.removeprefix(_MIRROR_PREFIX))
            return self.status()
        others = [p.name for p in self.dir.glob("*.conf") if p != self.conf]
        if others:
            raise SandboxArgumentError(
                f"{self.dir} already holds another cluster ({', '.join(others)}): one "
                "cluster per directory", hint="give each cluster a directory of its own (--dir)")
        if self.conf.exists():
            # A memstore OSD keeps its data in memory only: a stopped sandbox cannot be
            # resumed, so it is created afresh (same directory, port and OSD count unless
            # asked otherwise).
            port = port or self.port()
            osds = osds or len(self.osds())
            sites = self._mirror_sites()
            self.down()
            self._wipe()
        else:
            sites = []
        if self.root is not None:
            ensure_root(self.release, log)
        try:
            self._create(port or free_port(), osds or 1, timeout)
            for site in sites:
                self.start_rbd_mirror(site)
        except BaseException:
            self.down()  # nothing it started stays running
            raise
        return self.status()

    def _wipe(self) -> None:
        for name in ("mon.a", "mgr.x", *self.osds(), "run", "crush"):
            shutil.rmtree(self.dir / name, ignore_errors=True)
        for path in (self.conf, self.dir / "monmap", self.dir / f"{self.cluster}.mon.keyring",
                     self.admin_keyring, *map(self.mirror_keyring, self._mirror_sites())):
            path.unlink(missing_ok=True)

    def _mirror_sites(self) -> list[str]:
        return [d.removeprefix(_MIRROR_PREFIX) for d in self.mirror_daemons()]

    def _run(self, *args: str, cwd: Path | None = None) -> None:
        if self.root is None:
            proc = subprocess.run(args, capture_output=True, text=True, cwd=cwd)
        else:  # the sandbox's directory at the same path in the root: its paths hold
            proc = subprocess.run(in_root(self.root, args, [self.dir], cwd or "/"),
                                  capture_output=True, text=True, env=root_env())
        if proc.returncode != 0:
            raise SandboxError(f"{' '.join(args[:3])} ... failed (exit {proc.returncode}): "
                               f"{(proc.stderr or proc.stdout).strip()[-800:]}",
                               hint=f"see the logs in {self.dir / 'log'}")

    def _start(self, daemon: str) -> None:
        kind, ident = daemon.split(".", 1)
        if self._pid(daemon) is not None:
            return
        command = command_line(kind, ident, self.conf)
        if kind != "client":
            self._run(*command)
            return
        # rbd-mirror: its keyring, pid file and socket given here, not in the conf. Its
        # connections per pool read the conf again by cluster name, from the default
        # search path, whose last entry is ./$cluster.conf: hence --cluster and the cwd.
        # (CEPH_CONF would not do: its connections to the peer cluster would read it too.)
        run = self.dir / "run"
        self._run(*command, "--cluster", self.cluster,
                  "--keyring", str(self.mirror_keyring(ident.split(".", 1)[1])),
                  "--pid-file", str(self._pidfile(daemon)),
                  "--admin-socket", str(run / f"{daemon}.asok"),
                  # New peers and pools are seen within 2 s, not the default 30.
                  "--rbd_mirror_pool_replayers_refresh_interval", "2", cwd=self.dir)
        # rbd-mirror forks without waiting for its child: its pid file comes a moment later.
        deadline = time.monotonic() + 10
        while self._pid(daemon) is None:
            if time.monotonic() > deadline:
                raise SandboxError(f"{daemon} did not start within 10 s",
                                   hint=f"see {self.dir / 'log' / (daemon + '.log')}")
            time.sleep(0.05)

    def start_rbd_mirror(self, site: str | None = None) -> str:
        """Start an rbd-mirror daemon for this cluster (idempotent), running as its own
        cephx user client.rbd-mirror.<site> (site: the cluster name unless given) with
        caps `mon 'profile rbd-mirror' osd 'profile rbd'`. Returns the daemon's name."""
        from cephstack.ceph.mirror import mirror_user_caps

        site = _check_name("site name", site or self.cluster)
        daemon = f"{_MIRROR_PREFIX}{site}"
        if self._pid(daemon) is not None:
            return daemon
        keyring = self.mirror_keyring(site)
        if not keyring.exists():
            with self.connect() as conn:
                caps = [word for pair in mirror_user_caps().items() for word in pair]
                key = conn.mon("auth get-or-create", entity=daemon, caps=caps)[0]["key"]
            _write_private(keyring, f"[{daemon}]\n\tkey = {key}\n")
        self._start(daemon)
        return daemon

    def connect(self, timeout: float = 10.0):
        """An admin connection to this sandbox (a CephConnection; for a release root, its
        mon commands through that release's librados: RootConnection)."""
        from cephstack.ceph.adapter import CephConnection, ClusterAccess

        if self.root is not None:
            from cephstack.sandbox.rootmon import RootConnection

            return RootConnection(self.root, self.conf, self.admin_keyring, timeout)
        return CephConnection(ClusterAccess(str(self.conf), str(self.admin_keyring),
                                            "client.admin", timeout))

    def _create(self, port: int, osds: int, timeout: float) -> None:
        d = self.dir
        for sub in ("run", "log", "mon.a", "mgr.x"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(d, 0o700)  # holds admin keys
        (d / "release").write_text(self.release + "\n")
        fsid = str(uuid.uuid4())
        mon_keyring = d / f"{self.cluster}.mon.keyring"
        self._run("ceph-authtool", "--create-keyring", str(mon_keyring), "--gen-key",
                  "-n", "mon.", "--cap", "mon", "allow *")
        self._run("ceph-authtool", "--create-keyring", str(self.admin_keyring), "--gen-key",
                  "-n", "client.admin", "--cap", "mon", "allow *", "--cap", "osd", "allow *",
                  "--cap", "mgr", "allow *", "--cap", "mds", "allow *")
        self._run("ceph-authtool", str(mon_keyring), "--import-keyring", str(self.admin_keyring))
        self._run("monmaptool", "--create", "--fsid", fsid, "--addv", "a",
                  f"[v2:127.0.0.1:{port}]", str(d / "monmap"))
        # Written last among the set-up files: its presence means "created".
        self.conf.write_text(conf_text(d, fsid, port, osds, self.admin_keyring))
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
            crush = crush_map(conn, self.dir / "crush", self._run)
            edit = [lambda: conn.mon("osd setcrushmap", inbuf=crush)] if crush else []
            # At once: the monitor folds them into one OSD map commit.
            ids = [r["osdid"] for r in conn.concurrently(
                edit + [lambda u=u: conn.mon("osd new", uuid=u) for u in uuids])[len(edit):]]
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
        """Stop the sandbox's daemons by pid (rbd-mirror, OSDs, mgr, mon); remove nothing but
        their pid files. Returns those stopped."""
        # rbd-mirror's shutdown waits on its peer clusters, which may be gone already: a
        # throwaway sandbox need not wait for that.
        return (self._stop(self.mirror_daemons(), min(timeout, 3))
                + self._stop(self.osds(), timeout)
                + self._stop(["mgr.x"], timeout) + self._stop(["mon.a"], timeout))

def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
