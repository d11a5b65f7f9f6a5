"""Per-host-role bundles that mirror the host's filesystem, each with its manifest.

    <role>/etc/ceph/ceph.conf                    no keyring = line: keys are found at
    <role>/etc/ceph/ceph.client.<user>.keyring   their default path, as os-brick requires
    <role>/fragments/<service file>              merged into /etc/glance/glance-api.conf ...
    <role>/secrets/<uuid>.xml|.key, install.sh   compute: libvirt secrets
    <role>/MANIFEST.json, README.txt             where each file goes, owner, group, mode,
                                                 what to restart, volume types, checks

Roles: controller (Glance, Cinder volume), backup (Cinder backup AND Cinder's keyring: the
backup driver reads source volumes as Cinder's user), compute (Nova; libvirt secrets for
Nova's and Cinder's users, since Nova attaches volumes with Cinder's credentials).
"""

from __future__ import annotations

import json
from functools import partial

from cephstack.keyfiles import Secret, keyring_text
from cephstack.render import libvirt, openstack
from cephstack.render.cephconf import QEMU_DIRECTORIES, ceph_conf
from cephstack.render.ini import Section, ini_text, merged_sections, sections_to_data
from cephstack.render.model import (
    CEPH_CONF,
    CEPH_DIR,
    ClusterFacts,
    RenderedFile,
    key_file,
    keyring_name,
)
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
SERVICE_UNITS = {"glance": "glance-api", "cinder-volume": "cinder-volume",
                 "cinder-backup": "cinder-backup", "nova": "nova-compute"}
ROOT_FILE = FileAccess("root", "root", 0o644)
FRAGMENT_HEADER = "{what}, written by cephstack render: cephstack host install merges it " \
                  "into {target}\n(or: cephstack render --merge-into {target}{role})."


def service_sections(spec: Spec, fsid: str, kind: str) -> list[Section]:
    """The sections cephstack owns in service `kind`'s own file."""
    if kind == "glance":
        return openstack.glance(spec)
    if kind == "cinder-volume":
        return openstack.cinder_volume(spec, fsid)
    if kind == "cinder-backup":
        return openstack.cinder_backup(spec)
    return openstack.nova(spec, fsid)


def _mode(access: FileAccess) -> dict[str, str]:
    return {"owner": access.owner, "group": access.group, "mode": f"{access.mode:04o}"}


def _secrets(spec: Spec, facts: ClusterFacts, role: str) -> tuple[list[RenderedFile], list]:
    """libvirt secrets of Nova's and Cinder's users (one per user)."""
    files, secrets = [], []
    kinds = [k for k in ("nova", "cinder-volume") if k in spec.services]
    seen = set()
    for kind in kinds:
        entity = f"client.{spec.services[kind].user}"
        if entity in seen:
            continue
        seen.add(entity)
        uuid = openstack.libvirt_secret(spec, facts.fsid, kind)
        files += [RenderedFile(f"{role}/secrets/{uuid}.xml",
                               libvirt.secret_xml(uuid, entity, facts.fsid)),
                  key_file(facts, entity, f"{role}/secrets/{uuid}.key", Secret.reveal)]
        secrets.append({"uuid": uuid, "entity": entity, "service": kind})
    files.append(RenderedFile(f"{role}/secrets/install.sh",
                              libvirt.install_script([s["uuid"] for s in secrets]),
                              executable=True))
    return files, secrets


def _role(spec: Spec, facts: ClusterFacts, role: str,
          services: dict[str, tuple[str, ...]]) -> list[RenderedFile]:
    present = [k for k in services if k in spec.services]
    if not present:
        return []
    qemu = role == "compute"
    files = [RenderedFile(f"{role}{CEPH_CONF}", ceph_conf(facts, qemu), access=ROOT_FILE)]
    manifest: dict = {"format_version": "1", "role": role, "fsid": facts.fsid,
                      "services": present, "files": [], "directories": [],
                      "fragments": [], "secrets": [], "checks": [], "writable_by": [],
                      "restart": [SERVICE_UNITS[k] for k in present], "volume_types": [],
                      "notes": []}
    render = spec.render
    manifest["directories"].append({"host_path": CEPH_DIR, **_mode(FileAccess(
        "root", "root", render.ceph_dir_mode if render else 0o755))})
    keyrings: dict[str, FileAccess] = {}
    for kind in present:
        reader = spec.services[kind]
        for owner_kind in services[kind]:
            if owner_kind not in spec.services:
                continue
            entity = f"client.{spec.services[owner_kind].user}"
            if entity in keyrings and keyrings[entity] != reader.keyring:
                manifest["notes"].append(
                    f"{entity}'s keyring is read by several services here; it keeps the "
                    f"access of the first ({keyrings[entity]}).")
            keyrings.setdefault(entity, reader.keyring)
            manifest["checks"].append({
                "service": kind, "unix_user": reader.unix_user, "entity": entity,
                "keyring": f"{CEPH_DIR}/{keyring_name(entity)}",
                "pool": spec.services[owner_kind].pools[0]})
    for entity, access in keyrings.items():
        files.append(key_file(facts, entity, f"{role}{CEPH_DIR}/{keyring_name(entity)}",
                              partial(keyring_text, entity), access))
    for f in files:
        manifest["files"].append({"path": f.path.removeprefix(f"{role}/"),
                                  "host_path": f.path.removeprefix(role),
                                  "secret": f.secret, **_mode(f.access or ROOT_FILE)})
    # One fragment per service file (Cinder volume and backup may share cinder.conf).
    targets: dict[str, list[str]] = {}
    for kind in present:
        targets.setdefault(SERVICE_FILES[kind], []).append(kind)
    for target, kinds in targets.items():
        name = target.rsplit("/", 1)[1]
        sections = merged_sections(*(service_sections(spec, facts.fsid, k) for k in kinds))
        what = " and ".join(kinds)
        files.append(RenderedFile(f"{role}/fragments/{name}", ini_text(
            sections, FRAGMENT_HEADER.format(what=f"{what} settings", target=target,
                                             role=""))))
        manifest["fragments"].append({"path": f"fragments/{name}", "merge_into": target,
                                      "service_file": SERVICE_FILE_KINDS[target],
                                      "services": kinds, "sections": sections_to_data(sections)})
    if "cinder-volume" in present:
        manifest["volume_types"] = [
            f"openstack volume type create {name} --property volume_backend_name={name}"
            for _, _, name in openstack.backends(spec)]
    if qemu:
        secret_files, manifest["secrets"] = _secrets(spec, facts, role)
        files += secret_files
        owner = FileAccess(render.qemu_owner if render else "libvirt-qemu",
                           render.qemu_group if render else "kvm", 0o750)
        for directory in QEMU_DIRECTORIES:
            manifest["directories"].append({"host_path": directory, **_mode(owner)})
            manifest["writable_by"].append({"unix_user": owner.owner, "directory": directory})
        manifest["notes"] += openstack.notes(spec)
    files.append(RenderedFile(f"{role}/MANIFEST.json", json.dumps(manifest, indent=2) + "\n"))
    files.append(RenderedFile(f"{role}/README.txt", readme(manifest)))
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


def plain(spec: Spec, facts: ClusterFacts) -> list[RenderedFile]:
    files: list[RenderedFile] = []
    for role, services in ROLES.items():
        files += _role(spec, facts, role, services)
    return files
