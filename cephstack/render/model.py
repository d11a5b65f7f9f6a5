"""What rendering needs from the cluster, and what it produces."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from cephstack.keyfiles import Secret

# Fixed namespace: a secret's UUID is derived from the cluster fsid and the user, so it is
# the same on every run and every machine, and re-rendering never breaks running computes.
_SECRET_NAMESPACE = uuid.UUID("6c8f3a8e-3f0b-5d3e-9c6a-0c6e7a5b1f2d")
CEPH_CONF = "/etc/ceph/ceph.conf"  # where services find it on their hosts


@dataclass(frozen=True)
class ClusterFacts:
    fsid: str
    mon_host: str  # as ceph.conf wants it: "[v2:10.0.0.1:3300,v1:10.0.0.1:6789] ..."
    keys: dict[str, Secret] = field(default_factory=dict)  # entity -> key


@dataclass(frozen=True)
class RenderedFile:
    path: str  # relative to the output directory
    text: str
    secret: bool = False  # holds a key: written with the keyring mode (0600 by default)
    executable: bool = False

    @property
    def mode(self) -> int:
        """The mode of a file without a key (those take the spec's keyring mode)."""
        return 0o755 if self.executable else 0o644


def secret_uuid(fsid: str, entity: str) -> str:
    """The libvirt secret UUID of `entity` on the cluster `fsid`."""
    return str(uuid.uuid5(_SECRET_NAMESPACE, f"{fsid}/{entity}"))


def mon_host_from_monmap(monmap: dict) -> str:
    """ceph.conf's mon_host from `mon dump`: every monitor's address vector."""
    hosts = []
    for mon in monmap.get("mons", []):
        addrs = mon.get("public_addrs", {}).get("addrvec", [])
        if addrs:
            hosts.append("[" + ",".join(f"{a['type']}:{a['addr']}" for a in addrs) + "]")
        elif mon.get("public_addr"):
            hosts.append(mon["public_addr"].split("/")[0])
    return " ".join(hosts)
