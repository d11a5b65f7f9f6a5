"""What rendering needs from the cluster, and what it produces."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from cephstack.keyfiles import Secret
from cephstack.spec.load import FileAccess, Spec

# Fixed namespace: a secret's UUID is derived from the cluster fsid and the user, so it is
# the same on every run and every machine, and re-rendering never breaks running computes.
_SECRET_NAMESPACE = uuid.UUID("6c8f3a8e-3f0b-5d3e-9c6a-0c6e7a5b1f2d")
CLUSTER = "ceph"  # the cluster name: /etc/ceph/<cluster>.conf, <cluster>.<entity>.keyring
CEPH_DIR = "/etc/ceph"
CEPH_CONF = f"{CEPH_DIR}/{CLUSTER}.conf"  # where services find it on their hosts


def keyring_name(entity: str, cluster: str = CLUSTER) -> str:
    """The file name librados and os-brick look for by default: no keyring = line needed."""
    return f"{cluster}.{entity}.keyring"


def conf_path(cluster: str) -> str:
    """/etc/ceph/<cluster>.conf: a fleet of one is cluster "ceph", so /etc/ceph/ceph.conf."""
    return f"{CEPH_DIR}/{cluster}.conf"


def keyring_path(cluster: str, entity: str) -> str:
    return f"{CEPH_DIR}/{keyring_name(entity, cluster)}"


def names_clusters(spec: Spec) -> bool:
    """Whether rendered settings and bundles name each cluster (a spec with clusters:), or
    keep the one-cluster names (Glance store "rbd", role "compute", no option naming the
    cluster). The one place that chooses between the two looks; the files are the same."""
    return bool(spec.clusters)


@dataclass(frozen=True)
class ClusterFacts:
    fsid: str
    mon_host: str  # as ceph.conf wants it: "[v2:10.0.0.1:3300,v1:10.0.0.1:6789] ..."
    keys: dict[str, Secret] = field(default_factory=dict)  # entity -> key
    ms_mode: str | None = None  # the spec's cluster ms_mode: the clients' msgr2 mode


@dataclass(frozen=True)
class RenderedFile:
    path: str  # relative to the output directory
    text: str
    secret: bool = False  # holds a key: never world-readable, never shown
    executable: bool = False
    access: FileAccess | None = None  # owner, group, mode on its host; None: root, 0644
    pending: str | None = None  # the user whose key it needs, when that user does not exist

    @property
    def mode(self) -> int:
        if self.access is not None:
            return self.access.mode
        return 0o600 if self.secret else 0o755 if self.executable else 0o644


def key_file(facts: ClusterFacts, entity: str, path: str, text_of: Callable[[Secret], str],
             access: FileAccess | None = None) -> RenderedFile:
    """A file holding `entity`'s key; pending (not writable yet) while the user does not
    exist, so a plan can show it before apply creates the user."""
    if entity not in facts.keys:
        return RenderedFile(path, "", secret=True, access=access, pending=entity)
    return RenderedFile(path, text_of(facts.keys[entity]), secret=True, access=access)


def secret_uuid(fsid: str, entity: str, pinned: str | None = None) -> str:
    """The libvirt secret UUID of `entity` on the cluster `fsid` (or the one the spec pins,
    adopting a secret the computes already have)."""
    return pinned or str(uuid.uuid5(_SECRET_NAMESPACE, f"{fsid}/{entity}"))


def with_ms_mode(spec: Spec, facts: dict[str, ClusterFacts]) -> dict[str, ClusterFacts]:
    """Each cluster's facts with the msgr2 mode its spec entry asks of clients."""
    modes = {name: c.ms_mode for name, c in spec.clusters.items()} or {
        spec.cluster_name: spec.cluster.ms_mode}
    return {name: replace(f, ms_mode=modes.get(name, f.ms_mode)) if modes.get(name) else f
            for name, f in facts.items()}


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
