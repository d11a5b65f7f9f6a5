"""Checks run as a service's own Unix user (never as root): can it read its keyring, reach
the cluster with it and list its pool; can QEMU's user write its socket and log
directories. Each check is a short child process under `runuser`, bounded in time."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

PYTHON = "/usr/bin/python3"  # Debian's: the one python3-rados is built for
# Runs as the service user. Prints one line; never the key.
_PROBE = """
import sys, rados, rbd
conf, keyring, entity, pool, timeout = sys.argv[1:6]
try:
    open(keyring).close()
except OSError as e:
    sys.exit(f"cannot read its keyring {keyring}: {e.strerror}")
options = {"client_mount_timeout": timeout, "rados_mon_op_timeout": timeout,
           "rados_osd_op_timeout": timeout, "log_to_stderr": "false", "err_to_stderr": "false"}
if keyring != "/etc/ceph/" + "ceph." + entity + ".keyring":
    options["keyring"] = keyring  # under --root only: on the host the default search finds it
cluster = rados.Rados(conffile=conf, rados_id=entity.removeprefix("client."), conf=options)
try:
    cluster.connect(timeout=int(timeout))
    with cluster.open_ioctx(pool) as ioctx:
        print(f"connected as {entity}, {len(rbd.RBD().list(ioctx))} image(s) in pool {pool}")
except rados.Error as e:
    sys.exit(f"{type(e).__name__}: {e}")
finally:
    cluster.shutdown()
"""


@dataclass(frozen=True)
class CheckResult:
    what: str
    unix_user: str
    ok: bool
    detail: str


def _as_user(unix_user: str, argv: list[str], timeout: float) -> tuple[bool, str]:
    try:
        proc = subprocess.run(["runuser", "-u", unix_user, "--", *argv], capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return False, f"no answer within {timeout:g} s (is a monitor reachable?)"
    except OSError as e:
        return False, f"cannot run runuser: {e.strerror}"
    text = (proc.stdout.strip() or proc.stderr.strip()).splitlines()
    return proc.returncode == 0, (text[-1] if text else f"exit {proc.returncode}")


def service_can_connect(unix_user: str, conf: str, keyring: str, entity: str, pool: str,
                        timeout: float = 10.0) -> CheckResult:
    ok, detail = _as_user(unix_user, [PYTHON, "-c", _PROBE, conf, keyring, entity, pool,
                                      str(int(max(1, timeout)))], timeout + 5)
    return CheckResult(f"{entity} reads {keyring} and lists pool {pool}", unix_user, ok, detail)


def user_can_write(unix_user: str, directory: str) -> CheckResult:
    ok, detail = _as_user(unix_user, ["test", "-w", directory, "-a", "-x", directory], 10)
    return CheckResult(f"{directory} is writable", unix_user, ok,
                       "yes" if ok else f"not writable, or a parent is not traversable "
                       f"(e.g. /var/run/ceph 0770 ceph:ceph) ({detail})")
