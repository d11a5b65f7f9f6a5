"""Per-host-role bundles that mirror the host's filesystem, each with its manifest.

    <role>/etc/ceph/<cluster>.conf                no keyring = line: keys are found at
    <role>/etc/ceph/<cluster>.client.<user>.keyring  their default path, as os-brick requires
    <role>/fragments/<service file>               merged into /etc/glance/glance-api.conf ...
    <role>/secrets/<uuid>.xml|.key, install.sh    compute: libvirt secrets
    <role>/MANIFEST.json, README.txt              where each file goes, owner, group, mode,
                                                  what to restart, volume types, checks

A fleet of one is cluster "ceph" (/etc/ceph/ceph.conf); with several clusters every file is
named after its cluster, as librados and os-brick look them up, and the manifest names the
clusters. The roles and what each holds: render/roles.py.
"""

from __future__ import annotations

import json
from functools import partial

from cephstack import FORMAT_VERSION
from cephstack.keyfiles import Secret, keyring_text
from cephstack.render import libvirt, openstack
from cephstack.render.cephconf import QEMU_DIRECTORIES, ceph_conf
from cephstack.render.ini import ini_text, sections_to_data
from cephstack.render.model import (
    CEPH_DIR,
    ClusterFacts,
    RenderedFile,
    conf_path,
    key_file,
    keyring_path,
    names_clusters,
)
from cephstack.render.roles import ROLES, SERVICE_FILE_KINDS, SERVICE_FILES, Role, roles
from cephstack.spec.fleet import availability_zone, pool_cluster
from cephstack.spec.load import FileAccess, Spec

__all__ = ["ROLES", "plain", "readme"]  # ROLES: adopt/access.py reads the roles here

ROOT_FILE = FileAccess("root", "root", 0o644)
FRAGMENT_HEADER = "{what}, written by cephstack render: cephstack host install merges it " \
                  "into {target}\n(or: cephstack render --merge-into {target}{role})."


def _mode(access: FileAccess) -> dict[str, str]:
    return {"owner": access.owner, "group": access.group, "mode": f"{access.mode:04o}"}


def _files(spec: Spec, facts: dict[str, ClusterFacts], role: Role) -> list[RenderedFile]:
    r, render, several = role.name, spec.render, names_clusters(spec)
    files = [RenderedFile(f"{r}{conf_path(c)}", ceph_conf(facts[c], role.qemu),
                          access=ROOT_FILE) for c in role.confs]
    manifest: dict = {"format_version": FORMAT_VERSION, "role": r,
                      "fsid": facts[role.confs[0]].fsid}
    if several:
        manifest["clusters"] = {c: facts[c].fsid for c in role.confs}
    manifest.update({"services": role.services, "files": [], "directories": [{
        "host_path": CEPH_DIR, **_mode(FileAccess(
            "root", "root", render.ceph_dir_mode if render else 0o755))}],
        "fragments": [], "secrets": [], "checks": [], "writable_by": [],
        "restart": role.restart, "volume_types": [], "notes": role.notes})
    for (cluster, entity), access in role.keyrings.items():
        files.append(key_file(facts[cluster], entity, f"{r}{keyring_path(cluster, entity)}",
                              partial(keyring_text, entity), access))
    for c in role.checks:
        manifest["checks"].append({"service": c.service, "unix_user": c.unix_user,
                                   "entity": c.entity,
                                   "keyring": keyring_path(c.cluster, c.entity), "pool": c.pool,
                                   **({"conf": conf_path(c.cluster), "cluster": c.cluster}
                                      if several else {})})
    for f in files:
        manifest["files"].append({"path": f.path.removeprefix(f"{r}/"),
                                  "host_path": f.path.removeprefix(r), "secret": f.secret,
                                  **_mode(f.access or ROOT_FILE)})
    for target, sections in role.fragments.items():
        name = target.rsplit("/", 1)[1]
        kinds = [k for k in role.services if SERVICE_FILES[k] == target]
        files.append(RenderedFile(f"{r}/fragments/{name}", ini_text(
            sections, FRAGMENT_HEADER.format(what=f"{' and '.join(kinds)} settings",
                                             target=target,
                                             role=f" --role {r}" if several else ""))))
        manifest["fragments"].append({"path": f"fragments/{name}", "merge_into": target,
                                      "service_file": SERVICE_FILE_KINDS[target],
                                      "services": kinds, "sections": sections_to_data(sections)})
    if "cinder-volume" in role.services:
        manifest["volume_types"] = [
            f"openstack volume type create {name} --property volume_backend_name={name}"
            + (f" --availability-zone {availability_zone(spec, pool_cluster(spec, pool))}"
               if several else "") for pool, _, name in openstack.backends(spec)]
    if role.qemu:
        files += _secrets(spec, facts, role, manifest)
        owner = FileAccess(render.qemu_owner if render else "libvirt-qemu",
                           render.qemu_group if render else "kvm", 0o750)
        for directory in QEMU_DIRECTORIES:
            manifest["directories"].append({"host_path": directory, **_mode(owner)})
            manifest["writable_by"].append({"unix_user": owner.owner, "directory": directory})
    files.append(RenderedFile(f"{r}/MANIFEST.json", json.dumps(manifest, indent=2) + "\n"))
    files.append(RenderedFile(f"{r}/README.txt", readme(manifest)))
    return files


def _secrets(spec: Spec, facts: dict[str, ClusterFacts], role: Role,
             manifest: dict) -> list[RenderedFile]:
    """One libvirt secret per (cluster, user): the usage name carries the cluster's fsid."""
    files, seen = [], set()
    fsids = {c: f.fsid for c, f in facts.items()}
    for cluster, kind in role.secrets:
        entity = f"client.{spec.services[kind].user}"
        if (cluster, entity) in seen:
            continue
        seen.add((cluster, entity))
        uuid = openstack.secret_of(spec, fsids, cluster, kind)
        files += [RenderedFile(f"{role.name}/secrets/{uuid}.xml",
                               libvirt.secret_xml(uuid, entity, fsids[cluster])),
                  key_file(facts[cluster], entity, f"{role.name}/secrets/{uuid}.key",
                           Secret.reveal)]
        manifest["secrets"].append({"uuid": uuid, "entity": entity, "service": kind,
                                    **({"cluster": cluster} if names_clusters(spec) else {})})
    files.append(RenderedFile(f"{role.name}/secrets/install.sh", libvirt.install_script(
        [s["uuid"] for s in manifest["secrets"]]), executable=True))
    return files


def readme(m: dict) -> str:
    """The manifest in words, for the operator who opens the bundle."""
    lines = [f"cephstack bundle for a {m['role']} host (cluster {m['fsid']}).", "",
             "Install it, as root, on each such host:", "",
             "    cephstack host install <this directory>     (--dry-run shows the changes)",
             "", "Files (path on the host, owner:group, mode):"]
    lines += [f"    {f['host_path']}  {f['owner']}:{f['group']}  {f['mode']}"
              for f in m["files"]]
    lines += ["", "Settings merged into the services' own files (other lines stay):"]
    lines += [f"    {f['path']} -> {f['merge_into']}" for f in m["fragments"]]
    if m["directories"]:
        lines += ["", "Directories created when missing:"]
        lines += [f"    {d['host_path']}  {d['owner']}:{d['group']}  {d['mode']}"
                  for d in m["directories"]]
    if m["secrets"]:
        lines += ["", "libvirt secrets (defined by host install, or secrets/install.sh):"]
        lines += [f"    {s['uuid']}  {s['entity']}" for s in m["secrets"]]
    lines += ["", "Then restart: " + ", ".join(m["restart"])]
    if m["volume_types"]:
        lines += ["", "Once, from any host with OpenStack credentials:"]
        lines += [f"    {c}" for c in m["volume_types"]]
    if m["notes"]:
        lines += ["", "Notes:"] + [f"    - {n}" for n in m["notes"]]
    return "\n".join(lines) + "\n"


def plain(spec: Spec, facts: dict[str, ClusterFacts]) -> list[RenderedFile]:
    files: list[RenderedFile] = []
    for role in roles(spec, {c: f.fsid for c, f in facts.items()}):
        files += _files(spec, facts, role)
    return files
