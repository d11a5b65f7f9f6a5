"""What a bundle's files and fragments may say: only what `cephstack render` writes.

A service file option can load code (Cinder's volume_driver, backup_driver) and a
ceph.conf option can make root's own `ceph` command write anywhere (log file, admin socket):
so the fragments may set only the options render/openstack.py produces for one cluster or
several (driver options only to the RBD drivers), ceph.conf only render/cephconf.py's
options with their values, and a keyring only its one entity's key.
"""

from __future__ import annotations

import re

from cephstack.errors import BundleRefused
from cephstack.render.cephconf import ALL_CLIENTS, QEMU_CLIENTS, ms_options
from cephstack.render.existing import RBD_DRIVER
from cephstack.render.ini import Option, Section

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")  # pools, users, clusters, sections
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
KEY = re.compile(r"[A-Za-z0-9+/]{16,256}={0,2}")  # a cephx key, base64
_VALUE = re.compile(r"[\x20-\x7e]{0,1024}")  # printable ASCII, one line
_CONF_PATH = re.compile(r"/etc/ceph/[A-Za-z0-9][A-Za-z0-9_.-]{0,62}\.conf")
BACKUP_DRIVER = "cinder.backup.drivers.ceph.CephBackupDriver"
_ANY = None  # any other section (a Glance store, a Cinder backend)
# service file kind -> section -> the options cephstack sets there
OPTIONS: dict[str, dict[str | None, frozenset[str]]] = {
    "glance": {"DEFAULT": frozenset({"show_image_direct_url", "enabled_backends"}),
               "glance_store": frozenset({"default_backend"}),
               _ANY: frozenset({"rbd_store_pool", "rbd_store_user", "rbd_store_ceph_conf",
                                "rbd_store_chunk_size"})},
    "cinder": {"DEFAULT": frozenset({
        "enabled_backends", "backup_driver", "backup_ceph_conf", "backup_ceph_user",
        "backup_ceph_pool", "backup_ceph_chunk_size", "backup_ceph_stripe_unit",
        "backup_ceph_stripe_count", "restore_discard_excess_bytes"}),
        _ANY: frozenset({
            "volume_driver", "volume_backend_name", "rbd_pool", "rbd_user", "rbd_ceph_conf",
            "rbd_secret_uuid", "rbd_flatten_volume_from_snapshot", "rbd_max_clone_depth",
            "rbd_store_chunk_size", "rados_connect_timeout", "rbd_cluster_name",
            "backend_availability_zone", "replication_device", "enable_deferred_deletion",
            "deferred_deletion_delay", "deferred_deletion_purge_interval"})},
    "nova": {"libvirt": frozenset({
        "images_type", "images_rbd_pool", "images_rbd_ceph_conf", "rbd_user",
        "rbd_secret_uuid", "disk_cachemodes", "hw_disk_discard",
        "images_rbd_glance_store_name"}),
        "workarounds": frozenset({"never_download_image_if_on_rbd"})},
}
_FIXED = {"volume_driver": RBD_DRIVER, "backup_driver": BACKUP_DRIVER, "images_type": "rbd"}
_CONF_OPTIONS = {"rbd_store_ceph_conf", "rbd_ceph_conf", "backup_ceph_conf",
                 "images_rbd_ceph_conf"}
_MERGES = ("set", "list", "absent")


def _field(data: object, key: str, where: str) -> object:
    if not isinstance(data, dict):
        raise BundleRefused(f"{where}: expected an object, got {type(data).__name__}")
    if key not in data:
        raise BundleRefused(f"{where}: missing field {key!r}")
    return data[key]


def _option(data: object, service_file: str, section: str, allowed: frozenset[str],
            where: str) -> Option:
    key, value = _field(data, "key", where), _field(data, "value", where)
    merge = data.get("merge", "set") if isinstance(data, dict) else "set"
    if not isinstance(key, str) or key not in allowed:
        raise BundleRefused(f"{where}.key: {key!r} is not an option cephstack sets in "
                            f"[{section}] of the {service_file} file (allowed there: "
                            f"{', '.join(sorted(allowed))})")
    if not isinstance(value, str) or not _VALUE.fullmatch(value):
        raise BundleRefused(f"{where}.value: {key} = {value!r} is not one line of printable "
                            "text (at most 1024 characters)")
    if key in _FIXED and value != _FIXED[key]:
        raise BundleRefused(f"{where}.value: {key} must be {_FIXED[key]} (cephstack sets "
                            f"only Ceph's driver), got {value!r}")
    if key in _CONF_OPTIONS and not _CONF_PATH.fullmatch(value):
        raise BundleRefused(f"{where}.value: {key} must be /etc/ceph/<cluster>.conf, "
                            f"got {value!r}")
    if merge not in _MERGES:
        raise BundleRefused(f"{where}.merge: expected one of {', '.join(_MERGES)}, got "
                            f"{merge!r}")
    return Option(key, value, merge=merge)


def fragment_sections(data: object, service_file: str, where: str) -> list[Section]:
    """The manifest's sections for a `service_file` kind, each option allowed there."""
    if not isinstance(data, list) or not data:
        raise BundleRefused(f"{where}: expected a non-empty list of sections")
    allowed_sections = OPTIONS[service_file]
    sections, seen = [], set()
    for i, s in enumerate(data):
        at = f"{where}[{i}]"
        name = _field(s, "name", at)
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise BundleRefused(f"{at}.name: invalid section name {name!r}")
        allowed = allowed_sections.get(name, allowed_sections.get(_ANY))
        if allowed is None:
            raise BundleRefused(f"{at}.name: cephstack sets nothing in [{name}] of the "
                                f"{service_file} file (only in "
                                f"{', '.join(f'[{n}]' for n in allowed_sections if n)})")
        if name in seen:
            raise BundleRefused(f"{at}.name: section [{name}] is given twice")
        seen.add(name)
        options = _field(s, "options", at)
        if not isinstance(options, list) or not options:
            raise BundleRefused(f"{at}.options: expected a non-empty list")
        sections.append(Section(name, tuple(
            _option(o, service_file, name, allowed, f"{at}.options[{j}]")
            for j, o in enumerate(options))))
    return sections


def _lines(text: str, where: str) -> list[tuple[int, str]]:
    """Non-blank, non-comment lines (numbered), stripped; refuses control characters."""
    out = []
    for n, line in enumerate(text.split("\n"), 1):
        if not _VALUE.fullmatch(line.replace("\t", " ")):
            raise BundleRefused(f"{where} line {n}: not printable text")
        stripped = line.strip()
        if stripped and not stripped.startswith(("#", ";")):
            out.append((n, stripped))
    return out


def check_ceph_conf(text: str, fsid: str, qemu: bool, where: str) -> None:
    """A ceph.conf as render/cephconf.py writes it: [global] fsid (this cluster's) and
    mon_host, [client] cephconf's options with their values (QEMU's on computes only)."""
    client = {o.key: o.value for o in ALL_CLIENTS + (QEMU_CLIENTS if qemu else ())}
    client.update({o.key: o.value for o in ms_options("secure")})  # spec ms_mode: secure
    section, seen = None, set()
    for n, line in _lines(text, where):
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
            if section not in ("global", "client"):
                raise BundleRefused(f"{where} line {n}: section [{section}] is not one "
                                    "cephstack writes ([global], [client])")
            continue
        key, eq, value = (p.strip() for p in line.partition("="))
        if not eq or section is None:
            raise BundleRefused(f"{where} line {n}: not a 'key = value' line in a section")
        ok = (section == "global" and key == "fsid" and value == fsid) or \
             (section == "global" and key == "mon_host" and
              re.fullmatch(r"[0-9A-Za-z:.\[\],/ ]{1,1000}", value)) or \
             (section == "client" and client.get(key) == value)
        if not ok:
            raise BundleRefused(f"{where} line {n}: '{key} = {value}' in [{section}] is not "
                                "what cephstack writes there" + (
                                    f" (this cluster's fsid is {fsid})" if key == "fsid"
                                    else ""))
        if (section, key) in seen:
            raise BundleRefused(f"{where} line {n}: {key} is set twice in [{section}]")
        seen.add((section, key))
    if {("global", "fsid"), ("global", "mon_host")} - seen:
        raise BundleRefused(f"{where}: [global] must set fsid and mon_host")


def check_keyring(text: str, entity: str, where: str) -> None:
    """A keyring as keyfiles.keyring_text writes it: [entity] and its one key."""
    lines = _lines(text, where)
    if len(lines) != 2 or lines[0][1] != f"[{entity}]":
        raise BundleRefused(f"{where}: expected [{entity}] and its key, as cephstack writes "
                            "a keyring")
    key, eq, value = (p.strip() for p in lines[1][1].partition("="))
    if key != "key" or not eq or not KEY.fullmatch(value):
        raise BundleRefused(f"{where} line {lines[1][0]}: expected 'key = <base64 key>'")
