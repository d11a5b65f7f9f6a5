"""The host roles a fleet's bundles serve, and what each holds: the clusters' confs, the
keyrings (with the checks `host install` runs on them), the settings merged into each
service file, the libvirt secrets. One builder for one cluster or several.

Roles: controller (Glance and Cinder: every store and backend), backup (Cinder backup, and
Cinder's keyring on each volume cluster: the backup driver reads the source volumes as
Cinder's user), compute (Nova, one per cluster with a Nova pool, named compute-<zone> when
the spec names clusters: that cluster, plus the mirroring secondary's conf and Cinder's
secret there when the zone's volumes are mirrored; libvirt secrets for Nova's and Cinder's
users, since Nova attaches volumes with Cinder's credentials), and rbd-mirror-<cluster> on
both sides of a mirroring pair (the daemon's own conf and keyring; the peer's credentials
come from the bootstrap token stored in the cluster).

`--merge-into` merges a role's settings for one service file (choose, role_sections): with
several clusters they depend on the host, so the operator names its role.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cephstack.errors import CephstackError, SeveralClustersUsage
from cephstack.render import openstack
from cephstack.render.ini import Section, merged_sections
from cephstack.render.model import names_clusters
from cephstack.spec.fleet import availability_zone, mirror_user, pool_cluster
from cephstack.spec.load import FileAccess, Spec

# role -> service on that host -> the services whose keyrings it reads there
ROLES: dict[str, dict[str, tuple[str, ...]]] = {
    "controller": {"glance": ("glance",), "cinder-volume": ("cinder-volume",)},
    "backup": {"cinder-backup": ("cinder-backup", "cinder-volume")},
    "compute": {"nova": ("nova",)},
}
SERVICE_FILES = {"glance": "/etc/glance/glance-api.conf",
                 "cinder-volume": "/etc/cinder/cinder.conf",
                 "cinder-backup": "/etc/cinder/cinder.conf", "nova": "/etc/nova/nova.conf"}
SERVICE_FILE_KINDS = {"/etc/glance/glance-api.conf": "glance", "/etc/cinder/cinder.conf": "cinder",
                      "/etc/nova/nova.conf": "nova"}
# "glance" -> /etc/glance/glance-api.conf: where each service file lives in a bundle.
SERVICE_TARGETS = {service: target for target, service in SERVICE_FILE_KINDS.items()}
SERVICE_UNITS = {"glance": "glance-api", "cinder-volume": "cinder-volume",
                 "cinder-backup": "cinder-backup", "nova": "nova-compute"}
MIRROR_KEYRING = FileAccess("root", "ceph", 0o640)  # Debian's unit: --setuser ceph


@dataclass(frozen=True)
class Check:
    """`host install` checks that `unix_user` (service `service`) reads the keyring."""

    service: str
    unix_user: str
    cluster: str
    entity: str
    pool: str  # one the user can list


@dataclass
class Role:
    """What one host role's bundle holds, before it becomes files."""

    name: str
    services: list[str] = field(default_factory=list)
    confs: list[str] = field(default_factory=list)  # clusters
    keyrings: dict[tuple[str, str], FileAccess] = field(default_factory=dict)  # (cluster, entity)
    checks: list[Check] = field(default_factory=list)
    fragments: dict[str, list[Section]] = field(default_factory=dict)  # target -> sections
    secrets: list[tuple[str, str]] = field(default_factory=list)  # (cluster, service kind)
    restart: list[str] = field(default_factory=list)
    qemu: bool = False
    notes: list[str] = field(default_factory=list)
    _checked: set[tuple[str, str, str]] = field(default_factory=set)  # reader, owner, cluster

    def conf(self, cluster: str) -> None:
        if cluster not in self.confs:
            self.confs.append(cluster)

    def keyring(self, spec: Spec, cluster: str, owner_kind: str, reader_kind: str,
                pool: str) -> None:
        self.conf(cluster)
        reader = spec.services[reader_kind]
        entity = f"client.{spec.services[owner_kind].user}"
        have = self.keyrings.setdefault((cluster, entity), reader.keyring)
        if have != reader.keyring:
            self.notes.append(f"{entity}'s keyring is read by several services here; it "
                              f"keeps the access of the first ({have}).")
        if (reader_kind, owner_kind, cluster) not in self._checked:  # its first pool there
            self._checked.add((reader_kind, owner_kind, cluster))
            self.checks.append(Check(reader_kind, reader.unix_user, cluster, entity, pool))

    def fragment(self, kind: str, sections: list[Section]) -> None:
        target = SERVICE_FILES[kind]
        self.fragments[target] = merged_sections(self.fragments.get(target, []), sections)
        if kind not in self.services:
            self.services.append(kind)
        if SERVICE_UNITS[kind] not in self.restart:
            self.restart.append(SERVICE_UNITS[kind])


def _pools_by_cluster(spec: Spec, kind: str) -> list[tuple[str, str]]:
    return [(pool_cluster(spec, p), p) for p in spec.services[kind].pools]


def _keyrings(spec: Spec, role: Role, kind: str, zone: str | None = None) -> None:
    """The keyrings service `kind` reads on `role`'s hosts (ROLES), on each cluster of their
    owners' pools (only `zone`'s, for a compute)."""
    for owner in ROLES["compute" if zone else role.name][kind]:
        if owner not in spec.services:
            continue
        for cluster, pool in _pools_by_cluster(spec, owner):  # a cluster's first pool stays
            if zone is None or cluster == zone:
                role.keyring(spec, cluster, owner, kind, pool)


def _settings(spec: Spec, fsids: dict[str, str], kind: str) -> list[Section]:
    if kind == "glance":
        return openstack.glance_settings(spec)
    if kind == "cinder-volume":
        return openstack.cinder_volume_settings(spec, fsids)
    return openstack.cinder_backup_settings(spec)


def roles(spec: Spec, fsids: dict[str, str]) -> list[Role]:
    """The fleet's roles, in order; `fsids` by cluster name (the secrets derive from them)."""
    out = []
    for name in ("controller", "backup"):
        role = Role(name)
        for kind in ROLES[name]:
            if kind in spec.services:
                _keyrings(spec, role, kind)
                role.fragment(kind, _settings(spec, fsids, kind))
        out.append(role)
    m, controller = spec.mirroring, out[0]
    if m and "cinder-volume" in spec.services:  # failover: the driver then connects there
        controller.keyring(spec, m.secondary, "cinder-volume", "cinder-volume", m.pools[0])
    volumes = [c for c, _ in _pools_by_cluster(spec, "cinder-volume")] \
        if "cinder-volume" in spec.services else []
    for zone in openstack.nova_zones(spec):
        compute = Role(f"compute-{zone}" if names_clusters(spec) else "compute", qemu=True)
        _keyrings(spec, compute, "nova", zone)
        compute.fragment("nova", openstack.nova_settings(spec, fsids, zone))
        compute.secrets.append((zone, "nova"))
        if zone in volumes:
            compute.secrets.append((zone, "cinder-volume"))
        if m and m.primary == zone and volumes:
            compute.conf(m.secondary)  # attach the failed-over volumes from the secondary
            compute.secrets.append((m.secondary, "cinder-volume"))
        if names_clusters(spec):
            compute.notes.append(f"Put these compute hosts in availability zone "
                                 f"{availability_zone(spec, zone)!r} (a host aggregate).")
        compute.notes += openstack.notes(spec)
        out.append(compute)
    for cluster in (m.primary, m.secondary) if m else ():
        user = mirror_user(spec, cluster)
        daemon = Role(f"rbd-mirror-{cluster}", confs=[cluster], restart=[
            f"ceph-rbd-mirror@{user}"], notes=[
            f"Run the daemon as rbd-mirror --cluster {cluster} --id {user} (the "
            f"systemd unit: CLUSTER={cluster} in /etc/default/ceph); the peer's key "
            "comes from the bootstrap token cephstack apply imported."])
        daemon.keyrings[(cluster, f"client.{user}")] = MIRROR_KEYRING
        out.append(daemon)
    return [r for r in out if r.confs]


@dataclass(frozen=True)
class RoleMerge:
    """What merging a role's settings into one service file needs."""

    role: str | None  # None: every role's settings for the file (one cluster)
    service: str  # glance, cinder or nova
    target: str  # the file the bundle merges into: /etc/cinder/cinder.conf
    clusters: tuple[str, ...]  # the clusters the role's bundle names, in its order


def _fsids(spec: Spec, known: dict[str, str], mark: str) -> dict[str, str]:
    """Every cluster's fsid: the ones read, a placeholder for the others."""
    return {c: known.get(c, f"(fsid of {c} not read: {mark})")
            for c in spec.clusters or (spec.cluster_name,)}


def choose(spec: Spec, role: str | None, service: str) -> RoleMerge:
    """The role's merge into `service`'s file, checked before any cluster is reached."""
    target = SERVICE_TARGETS.get(service)
    if target is None:
        raise CephstackError(f"unknown service file {service!r}", hint="glance, cinder or nova")
    found = {r.name: r for r in roles(spec, _fsids(spec, {}, "listing"))}
    names = ", ".join(found) or "none"
    if role is None and not names_clusters(spec):
        kinds = [k for k, t in SERVICE_FILES.items() if t == target]
        if not any(k in spec.services for k in kinds):
            raise CephstackError(f"the spec declares no service for {service}'s file",
                                 hint=f"add {' or '.join(kinds)} under services:")
        return RoleMerge(None, service, target, (spec.cluster_name,))
    if role is None:
        raise SeveralClustersUsage(
            f"--merge-into with several clusters ({', '.join(spec.clusters)}) needs --role: "
            f"the settings depend on the host (roles: {names})",
            hint="give the role whose bundle this host would install, e.g. --role "
                 f"{next(iter(found), 'controller')}")
    if role not in found:
        raise SeveralClustersUsage(
            f"--role {role}: no such role in {spec.path} (roles: {names})",
            hint="the role names are the bundles' directories")
    chosen = found[role]
    if target not in chosen.fragments:
        others = [r.name for r in found.values() if target in r.fragments]
        has = ", ".join(chosen.fragments) or "no service file"
        raise SeveralClustersUsage(
            f"role {role} has no {service} settings: its bundle merges into {has}, not {target}",
            hint=f"roles with {service} settings: {', '.join(others)}" if others else
            f"no role of {spec.path} has {service} settings")
    return RoleMerge(role, service, target, tuple(chosen.confs))


def role_sections(spec: Spec, chosen: RoleMerge, fsids: dict[str, str]) -> list[Section]:
    """The sections the role's bundle merges into its target (every role's, in order, for
    no role), from the fsids of the role's clusters alone. That they name no other cluster
    is checked, not assumed: rendered with two different placeholders for the others, they
    must not change."""
    def render(mark: str) -> list[Section]:
        return merged_sections(*(r.fragments[chosen.target]
                                 for r in roles(spec, _fsids(spec, fsids, mark))
                                 if chosen.role in (None, r.name)
                                 and chosen.target in r.fragments))

    sections = render("a")
    if sections != render("b"):
        raise CephstackError(f"internal: role {chosen.role}'s {chosen.service} settings depend "
                             f"on a cluster other than {', '.join(chosen.clusters)}")
    return sections
