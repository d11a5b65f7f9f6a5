"""Which Ceph release a host's librados is, and whether it can use aes256k keys.

aes256k (the CVE-2025-30156 fix) came with Squid 19.2.6 and Tentacle 20.2.4. Measured
here: Pacific 16.2.15's and Reef 18.2.7's librados refuse an aes256k keyring at once
("Malformed input", EIO), Tentacle 20.2.4's reads it. librados' own version call gives
its API version (3.0.0 on all three), not Ceph's: the version comes from `ceph --version`
or the package manager. Pure but for local_version().
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

RELEASES = {14: "nautilus", 15: "octopus", 16: "pacific", 17: "quincy", 18: "reef",
            19: "squid", 20: "tentacle"}
# The first version of each release whose librados reads aes256k keys.
AES256K_FROM = {19: (19, 2, 6), 20: (20, 2, 4)}
AES256K_ADVICE = ("install librados2/python3-rados (and librbd1/python3-rbd) of Squid "
                  "19.2.6 or Tentacle 20.2.4 or later")


@dataclass(frozen=True)
class LibVersion:
    version: str  # "16.2.15"
    source: str  # where it was read: "ceph --version", "dpkg librados2", ...

    @property
    def parts(self) -> tuple[int, ...]:
        return tuple(int(p) for p in re.findall(r"\d+", self.version)[:3])

    @property
    def release(self) -> str:
        major = self.parts[0] if self.parts else 0
        return RELEASES.get(major, f"Ceph {major}" if major else "unknown")

    def label(self) -> str:
        return f"Ceph {self.version} {self.release.capitalize()}"

    @property
    def aes256k(self) -> bool:
        return reads_aes256k(self.parts)


def reads_aes256k(parts: tuple[int, ...]) -> bool:
    """Whether librados of this version (major, minor, patch) reads aes256k keys."""
    if not parts:
        return False
    if parts[0] > max(AES256K_FROM):
        return True
    first = AES256K_FROM.get(parts[0])
    return first is not None and tuple(parts) >= first


def parse_version(text: str) -> str | None:
    """"16.2.15" from `ceph --version` output or a package version (16.2.15+ds-0+deb12u2,
    2:18.2.7-0.el9)."""
    found = re.search(r"(?:^|[\s:])(\d{2}\.\d+\.\d+)", text)
    return found.group(1) if found else None


def local_version() -> LibVersion | None:
    """This host's Ceph client version: `ceph --version`, else the librados2 package."""
    probes = [("ceph --version", ["ceph", "--version"]),
              ("dpkg librados2", ["dpkg-query", "-W", "-f", "${Version}", "librados2"]),
              ("rpm librados2", ["rpm", "-q", "--qf", "%{VERSION}", "librados2"])]
    for source, argv in probes:
        if shutil.which(argv[0]) is None:
            continue
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=10,
                                 stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired):
            continue
        version = parse_version(out.stdout) if out.returncode == 0 else None
        if version:
            return LibVersion(version, source)
    return None


# Run by a host's own python3 (the one its services use), so it imports that host's
# bindings, not this process's: host/keysupport.py. Kept in ceph/, beside the adapter.
KEY_TYPE_PROBE = """
import base64, os, struct, sys, tempfile, time
try:
    import rados
except ImportError as e:
    sys.exit(f"no python3-rados: {e}")
key = base64.b64encode(struct.pack("<HIIH", 2, int(time.time()), 0, 32) + os.urandom(32))
with tempfile.NamedTemporaryFile("w", suffix=".keyring") as f:
    f.write("[client.probe]\\n\\tkey = " + key.decode() + "\\n")
    f.flush()
    c = rados.Rados(rados_id="probe", conf={
        "keyring": f.name, "mon_host": "127.0.0.1:9", "client_mount_timeout": "1",
        "log_to_stderr": "false", "err_to_stderr": "false", "log_file": ""})
    try:
        c.connect(timeout=1)
        print("readable")
    except rados.TimedOut:
        print("readable")  # it got past the keyring, to looking for a monitor
    except rados.Error as e:
        print("unreadable" if getattr(e, "errno", None) == 5 else f"unknown: {e}")
    finally:
        c.shutdown()
"""
