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
from cephstack.plan.keyopinions import insecure_key_findings
from cephstack.plan.opinions import (  # ERROR, WARNING, Finding: audit's own, shared with plan
    ERROR,
    HEALTHY_PGS_PER_OSD,
    WARNING,
    Finding,
    caps_findings,
    pgs_per_osd_findings,
    pool_findings,
    pools_in,
    service_by_name,
    shared_user_findings,
    touches_rbd,
)
from cephstack.plan.opinions import covers as _covers
from cephstack.plan.state import ClusterState
from cephstack.spec.caps import Caps, Grant
from cephstack.spec.load import Spec

__all__ = ["ERROR", "HEALTHY_PGS_PER_OSD", "WARNING", "Finding", "audit", "exit_code"]
_BACKUP_SNAP = re.compile(r"^backup\.[0-9a-f-]{36}\.snap\.[0-9.]+$")
BACKUP_PILE_UP = 2  # backup snapshots on one volume from which they are piling up


def is_backup_snapshot(name: str) -> bool:
    """A snapshot Cinder's Ceph backup driver leaves on a source volume."""
    return bool(_BACKUP_SNAP.match(name))


@dataclass(frozen=True)
class Role:
    """An OpenStack service recognised behind a cephx user."""

    service: str  # glance | cinder-volume | cinder-backup | nova
    entity: str
    pools: tuple[str, ...]  # the pools it writes


_pools_in = pools_in


def _writable_pools(caps: Caps) -> set[str]:
    # A Grant, not a cap string: a pool's name may hold quotes (issue 18).
    return {p for p in _pools_in(caps) if _covers(caps, "osd", Grant("allow", ("rwx",), p))}


_service_by_name = service_by_name


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
        if touches_rbd(caps, rbd_pools | set(state.pools)) or _service_by_name(entity):
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
        for daemon, grants in caps.grants:
            found += [Finding(
                "caps-unparsable", WARNING, entity,
                f"{daemon} cap grant '{g.render()}' could not be parsed",
                "cephstack cannot tell what it allows: the other findings and the access "
                "picture leave it out", "rewrite it as `ceph auth caps` takes it, a name "
                "with quotes or spaces in quotes: pool=\"name\"") for g in sorted(grants)
                if g.unparsed]
        found += caps_findings(entity, caps)
    for role in roles:
        caps = users.get(role.entity, Caps(()))
        if role.service in ("cinder-volume", "nova") and images and not _covers(
                caps, "osd", Grant("allow", ("r",), images)):
            found.append(Finding(
                "no-cow-clone-from-images", ERROR, role.entity,
                f"{role.service} cannot read the images pool {images}",
                "no copy-on-write clones of Glance images: every volume and guest disk is "
                "silently a full download and copy",
                f"osd 'profile rbd-read-only pool={images}'"))
        if (role.service == "nova" and images and spec is not None
                and spec.services["nova"].direct_snapshots
                and not _covers(caps, "osd", Grant("allow", ("rwx",), images))):
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
    found += shared_user_findings(by_user)
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
        found += pool_findings(name, p.size, p.min_size, p.pg_num, state.osds_in)
    return found + pgs_per_osd_findings(state.pools.values(), state)


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
    roles = {r.entity: r.service for r in recognise(state, spec)[0]}
    found = (_user_findings(state, spec) + _pool_findings(state, pools)
             + _file_findings(state, keyring_files or {})
             + _backup_snapshot_findings(volume_snapshots or {})
             + insecure_key_findings(state, {*users, *roles}, roles))
    return sorted(found, key=lambda f: (f.severity != ERROR, f.id, f.entity))


def exit_code(findings: list[Finding]) -> int:
    """0 clean, 1 warnings only, 2 errors."""
    if any(f.severity == ERROR for f in findings):
        return 2
    return 1 if findings else 0
