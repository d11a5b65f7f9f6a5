"""Audit a live cluster: what is wrong today for OpenStack on RBD, each finding with an id,
severity, entity, what breaks in OpenStack terms, and the fix. Pure: works on observed facts.

Without a spec, OpenStack users are recognised by name (glance, cinder, nova) or by caps
that reference RBD pools; with a spec, the spec says who is who.
"""

from __future__ import annotations

import os
import re
import stat
from collections import defaultdict
from dataclasses import dataclass

from cephstack.keyfiles import FileState, directory_problem
from cephstack.plan.state import ClusterState, counted_osds
from cephstack.spec.caps import Caps, Grant, parse_grant
from cephstack.spec.load import Spec

ERROR, WARNING = "error", "warning"
HEALTHY_PGS_PER_OSD = 100  # Ceph's mon_target_pg_per_osd
_BACKUP_SNAP = re.compile(r"^backup\.[0-9a-f-]{36}\.snap\.[0-9.]+$")
BACKUP_PILE_UP = 2  # backup snapshots on one volume from which they are piling up


def is_backup_snapshot(name: str) -> bool:
    """A snapshot Cinder's Ceph backup driver leaves on a source volume."""
    return bool(_BACKUP_SNAP.match(name))


@dataclass(frozen=True)
class Finding:
    id: str
    severity: str
    entity: str
    what: str
    breaks: str
    fix: str


@dataclass(frozen=True)
class Role:
    """An OpenStack service recognised behind a cephx user."""

    service: str  # glance | cinder-volume | cinder-backup | nova
    entity: str
    pools: tuple[str, ...]  # the pools it writes


def _pools_in(caps: Caps) -> set[str]:
    return {g.pool for g in caps.by_type().get("osd", ()) if g.pool}


def _writable_pools(caps: Caps) -> set[str]:
    return {p for p in _pools_in(caps) if _covers(caps, "osd", f"allow rwx pool={p}")}


# The mon profiles that grant `osd blocklist add` of one client instance (MonCap.cc: the
# rbd profiles; measured on Pacific: rbd-mirror-peer too), so a dead holder's exclusive lock
# can be broken. The mirroring users cephstack creates have the rbd-mirror ones.
_BLOCKLISTING_PROFILES = ("rbd", "rbd-mirror", "rbd-mirror-peer")


def _covers(caps: Caps, daemon: str, grant: str | Grant) -> bool:
    wanted = parse_grant(grant) if isinstance(grant, str) else grant
    return any(g.covers(wanted) for g in caps.by_type().get(daemon, ()))


def _service_by_name(name: str) -> str | None:
    n = name.removeprefix("client.").lower()
    if "glance" in n or n == "images":
        return "glance"
    if "backup" in n:
        return "cinder-backup"
    if "cinder" in n or "volume" in n:
        return "cinder-volume"
    if "nova" in n or "compute" in n:
        return "nova"
    return None


def recognise(state: ClusterState, spec: Spec | None) -> tuple[list[Role], str | None]:
    """The OpenStack users and the images (Glance) pool."""
    if spec is not None:
        roles = [Role(k, f"client.{s.user}", s.pools) for k, s in spec.services.items()]
        images = spec.services["glance"].pools[0] if "glance" in spec.services else None
        return roles, images
    roles = []
    for entity, client in sorted(state.clients.items()):
        service = _service_by_name(entity)
        if service is None or entity.startswith("client.bootstrap") or entity == "client.admin":
            continue
        caps = Caps.parse(client.caps)
        roles.append(Role(service, entity, tuple(sorted(_writable_pools(caps)))))
    glance = [r for r in roles if r.service == "glance"]
    images = glance[0].pools[0] if glance and glance[0].pools else (
        "images" if "images" in state.pools else None)
    # Cinder-backup's own pools are the ones no cinder-volume user writes.
    volume_pools = {p for r in roles if r.service == "cinder-volume" for p in r.pools}
    roles = [Role(r.service, r.entity, tuple(p for p in r.pools if p not in volume_pools))
             if r.service == "cinder-backup" else r for r in roles]
    # Cinder and Nova may read images, which is not their own pool.
    roles = [Role(r.service, r.entity, tuple(p for p in r.pools if p != images))
             if r.service in ("cinder-volume", "nova") else r for r in roles]
    return roles, images


def rbd_users(state: ClusterState) -> dict[str, Caps]:
    """Client users (not admin/bootstrap) whose caps touch RBD: rbd profiles or RBD pools."""
    rbd_pools = {n for n, p in state.pools.items() if "rbd" in p.applications}
    out = {}
    for entity, client in state.clients.items():
        if entity == "client.admin" or entity.startswith("client.bootstrap"):
            continue
        caps = Caps.parse(client.caps)
        grants = [g for gs in caps.by_type().values() for g in gs]
        if _pools_in(caps) & (rbd_pools | set(state.pools)) or any(
                "rbd" in " ".join(g.perms) for g in grants) or _service_by_name(entity):
            out[entity] = caps
    return out


def _user_findings(state: ClusterState, spec: Spec | None) -> list[Finding]:
    found: list[Finding] = []
    roles, images = recognise(state, spec)
    users = rbd_users(state)
    for role in roles:
        if role.entity not in users:
            users[role.entity] = Caps.parse(state.clients[role.entity].caps) \
                if role.entity in state.clients else Caps(())
    for entity, caps in sorted(users.items()):
        if not any(_covers(caps, "mon", f"profile {p}") for p in _BLOCKLISTING_PROFILES):
            found.append(Finding(
                "mon-cannot-blocklist", ERROR, entity,
                f"mon caps '{caps.rendered().get('mon', '')}' cannot blocklist a client",
                "after a host crash the dead client's exclusive lock cannot be broken: "
                "nova evacuate and lock recovery hang", "mon 'profile rbd'"))
        if any(g.pool is None and g.namespace is None and g.kind == "allow" and
               ({"*"} & set(g.perms) or any("w" in p for p in g.perms))
               for g in caps.by_type().get("osd", ())):
            found.append(Finding(
                "osd-not-pool-restricted", ERROR, entity,
                f"osd caps '{caps.rendered()['osd']}' are not restricted to pools",
                "the service can read and overwrite every pool: a compromised or buggy "
                "service damages all data", "osd 'profile rbd pool=<its pools>'"))
    for role in roles:
        caps = users.get(role.entity, Caps(()))
        if role.service in ("cinder-volume", "nova") and images and not _covers(
                caps, "osd", f"allow r pool={images}"):
            found.append(Finding(
                "no-cow-clone-from-images", ERROR, role.entity,
                f"{role.service} cannot read the images pool {images}",
                "no copy-on-write clones of Glance images: every volume and guest disk is "
                "silently a full download and copy",
                f"osd 'profile rbd-read-only pool={images}'"))
        if (role.service == "nova" and images and spec is not None
                and spec.services["nova"].direct_snapshots
                and not _covers(caps, "osd", f"allow rwx pool={images}")):
            found.append(Finding(
                "nova-no-direct-snapshots", WARNING, role.entity,
                f"nova cannot write the images pool {images}, but direct snapshots are on",
                "instance snapshots silently fall back to qemu-img convert and an upload "
                "through Glance", f"osd 'profile rbd pool={images}'"))
        can_unprotect = any(g.kind == "profile" and g.perms == ("rbd",)
                            for g in caps.by_type().get("osd", ())) or _covers(
            caps, "osd", "allow class-read object_prefix rbd_children")
        if role.service == "glance" and not can_unprotect:
            found.append(Finding(
                "glance-cannot-unprotect", ERROR, role.entity,
                "glance cannot read rbd_children in every pool, so it cannot unprotect "
                "snapshots", "deleting an image fails: images pile up",
                f"osd 'profile rbd pool={images or '<images pool>'}'"))
    by_user: dict[str, list[str]] = defaultdict(list)
    for role in roles:
        by_user[role.entity].append(role.service)
    for entity, services in sorted(by_user.items()):
        if len(services) > 1:
            found.append(Finding(
                "shared-user", WARNING, entity, f"one user serves {', '.join(services)}",
                "one leaked key exposes several services; caps cannot be least-privilege",
                "one cephx user per service"))
    by_key: dict[str, list[str]] = defaultdict(list)
    for entity, client in state.clients.items():
        by_key[client.key.reveal()].append(entity)
    for entities in by_key.values():
        if len(entities) > 1 and any(e in users for e in entities):
            found.append(Finding(
                "shared-key", ERROR, ", ".join(sorted(entities)),
                "several users share one key", "one leaked key exposes all of them",
                "give each user its own key"))
    rbd_pools = {p for caps in users.values() for p in _pools_in(caps)}
    for pool in sorted(rbd_pools & set(state.pools)):
        if "rbd" not in state.pools[pool].applications:
            found.append(Finding(
                "pool-without-rbd-application", WARNING, f"pool {pool}",
                "an RBD pool without the rbd application", "HEALTH_WARN 'application not "
                "enabled'; rbd tools do not treat the pool as RBD", "rbd pool init "
                "(cephstack apply does)"))
    return found


def _pool_findings(state: ClusterState, pools: set[str]) -> list[Finding]:
    found = []
    for name in sorted(pools & set(state.pools)):
        p = state.pools[name]
        if state.osds_in > 1 and p.size == 1:  # a one-OSD cluster is a sandbox
            found.append(Finding("pool-size-one", ERROR, f"pool {name}", "size 1: one copy",
                                 "losing one disk loses data", "size 3"))
        elif state.osds_in > 1 and p.min_size == 1:
            found.append(Finding("pool-min-size-one", WARNING, f"pool {name}",
                                 "min_size 1: writes go on with a single copy",
                                 "a second failure during recovery loses acknowledged writes",
                                 "min_size 2"))
        if p.pg_num & (p.pg_num - 1):
            found.append(Finding("pg-num-not-power-of-two", WARNING, f"pool {name}",
                                 f"pg_num {p.pg_num} is not a power of two",
                                 "placement groups differ in size: data is unevenly spread",
                                 "a power of two"))
    osds = counted_osds(state)
    per_osd = sum(p.pg_num * p.size for p in state.pools.values()) / osds
    if per_osd > state.max_pg_per_osd:
        found.append(Finding("pgs-per-osd-over-limit", ERROR, "cluster",
                             f"{per_osd:.0f} PGs per OSD, above mon_max_pg_per_osd "
                             f"{state.max_pg_per_osd}", "new pools and pg_num increases "
                             "are refused; peering is slow", "fewer PGs or more OSDs"))
    elif state.pools and per_osd < HEALTHY_PGS_PER_OSD / 10:
        found.append(Finding("pgs-per-osd-low", WARNING, "cluster",
                             f"{per_osd:.0f} PGs per OSD, far below ~{HEALTHY_PGS_PER_OSD}",
                             "data is spread over few placement groups: uneven use of disks",
                             "raise pg_num or enable the autoscaler"))
    return found


def _dir_findings(files: dict[str, FileState]) -> list[Finding]:
    found = []
    dirs = {os.path.dirname(f.path) or ".": f.dir_mode for f in files.values()}
    for directory, mode in sorted(dirs.items()):
        problem = directory_problem(mode)
        if problem is None:
            continue
        if mode is not None and stat.S_ISDIR(mode):
            found.append(Finding("keyring-dir-writable", ERROR, directory,
                                 f"the keyring directory {problem}",
                                 "a local user can swap a service's keyring (its own key, or a "
                                 "link that makes root write elsewhere)",
                                 f"chmod go-w {directory}"))
        else:
            found.append(Finding("keyring-dir-not-a-directory", ERROR, directory,
                                 f"the keyring directory {problem}",
                                 "cephstack refuses to write keyrings through it",
                                 "point keyrings.directory at the real directory"))
    return found


def _file_findings(state: ClusterState, files: dict[str, FileState]) -> list[Finding]:
    found = _dir_findings(files)
    for entity, f in sorted(files.items()):
        if not f.exists:
            continue
        if f.several_sections:
            found.append(Finding("keyring-several-sections", WARNING, f.path,
                                 f"the file holds several sections or keys for {entity}; "
                                 "Ceph uses the last one",
                                 "an edit to the first section has no effect; a stale key "
                                 "lingers in the file", "rewrite it with one section "
                                 "(cephstack apply does)"))
        if f.mode is not None and f.mode & 0o007:
            found.append(Finding("keyring-readable-by-others", ERROR, f.path,
                                 f"mode {f.mode:04o}: other users can read the key",
                                 f"any local user can act as {entity}", "chmod 0600 "
                                 "(or 0640 with the service's group)"))
        cluster = state.clients.get(entity)
        if cluster is not None and f.key is not None and f.key != cluster.key:
            found.append(Finding("keyring-key-mismatch", ERROR, f.path,
                                 f"the key does not match {entity}'s key in the cluster",
                                 "the service fails to authenticate", "rewrite it "
                                 "(cephstack apply does)"))
    return found


def _backup_snapshot_findings(snapshots: dict[str, list[str]]) -> list[Finding]:
    found = []
    for image, snaps in sorted(snapshots.items()):
        backups = [s for s in snaps if is_backup_snapshot(s)]
        if len(backups) >= BACKUP_PILE_UP:
            found.append(Finding(
                "backup-snapshots-pile-up", WARNING, image,
                f"{len(backups)} Cinder backup snapshots on the volume",
                "every incremental backup leaves a snapshot on the source: space and "
                "snapshot trimming grow without bound", "set backup_ceph_max_snapshots"))
    return found


def audit(state: ClusterState, spec: Spec | None = None,
          keyring_files: dict[str, FileState] | None = None,
          volume_snapshots: dict[str, list[str]] | None = None) -> list[Finding]:
    """Every finding, errors first."""
    users = rbd_users(state)
    pools = {n for n, p in state.pools.items() if "rbd" in p.applications}
    pools |= {p for caps in users.values() for p in _pools_in(caps)}
    if spec is not None:
        pools |= set(spec.pools)
    found = (_user_findings(state, spec) + _pool_findings(state, pools)
             + _file_findings(state, keyring_files or {})
             + _backup_snapshot_findings(volume_snapshots or {}))
    return sorted(found, key=lambda f: (f.severity != ERROR, f.id, f.entity))


def exit_code(findings: list[Finding]) -> int:
    """0 clean, 1 warnings only, 2 errors."""
    if any(f.severity == ERROR for f in findings):
        return 2
    return 1 if findings else 0
