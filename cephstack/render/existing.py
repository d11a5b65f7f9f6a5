"""Merging into a service's existing file without breaking what it already does: Glance's
legacy stores become multi-store backends, an existing Ceph backend or libvirt secret is
adopted (the spec pins it) rather than duplicated or replaced.

Works from the sections alone (no spec), so `host install` merges a bundle's fragments on
a host the same way `render --merge-into` does on the admin machine."""

from __future__ import annotations

from dataclasses import dataclass

from cephstack.errors import CephstackError
from cephstack.render.ini import Section
from cephstack.render.merge import IniLines, group_name, misnamed_sections
from cephstack.render.model import CEPH_CONF
from cephstack.render.openstack import GLANCE_STORE

STORE_TYPES = ("file", "http", "swift", "rbd", "cinder", "s3", "vmware")
# Legacy [glance_store] options -> the store they configure (glance_store/_drivers/*.py).
_STORE_OPTIONS = {"file": ("filesystem_store_",),
                  "http": ("https_ca_certificates_file", "https_insecure",
                           "http_proxy_information"),
                  "swift": ("swift_", "default_swift_reference"), "cinder": ("cinder_",),
                  "s3": ("s3_store_",), "vmware": ("vmware_",)}
RBD_DRIVER = "cinder.volume.drivers.rbd.RBDDriver"
# Choices a host made that cephstack's value would silently undo: (section, option) ->
# (the service kind whose `replace_existing: true` allows it, what would be lost).
GUARDED = {("DEFAULT", "backup_driver"): (
               "cinder-backup", "the backups made with that driver could no longer be "
               "restored"),
           ("libvirt", "images_type"): (
               "nova", "running instances' disks would be looked for in Ceph, not where "
               "they are")}


@dataclass(frozen=True)
class Merged:
    text: str
    notes: tuple[str, ...]  # what the operator should know: migrations, ignored sections


def _store_type(item: str) -> str | None:
    item = item.strip().lower()
    if item in STORE_TYPES:
        return item
    if "filesystem" in item:  # glance.store.filesystem.Store, the oldest spelling
        return "file"
    return next((t for t in STORE_TYPES if f".{t}." in item), None)


def _option(sections: list[Section], section: str, key: str):
    return next((o for s in sections if s.name == section for o in s.options if o.key == key),
                None)


def _migrate_glance(ini: IniLines, sections: list[Section]) -> list[str]:
    """Legacy [glance_store] stores/default_store -> multi-store backends, kept as they were:
    both descriptions must not coexist and disagree."""
    if ini.value("DEFAULT", "enabled_backends"):
        return []  # already multi-store
    stores, default = ini.value("glance_store", "stores"), ini.value("glance_store",
                                                                       "default_store")
    if stores is None and default is None:
        return []
    kept = [t for t in dict.fromkeys(_store_type(s) for s in (stores or default or "").split(","))
            if t and t != "rbd"]  # an old rbd store is replaced by cephstack's backend
    if kept:
        ini.set("DEFAULT", "enabled_backends", ",".join(f"{t}:{t}" for t in kept))
    legacy = ini.section_options("glance_store")
    for store in kept:
        for key, value in legacy.items():
            if key.startswith(_STORE_OPTIONS.get(store, ())) and \
                    ini.value(store, key) is None:
                ini.set(store, key, value)  # each backend reads its options from its section
    ours = _option(sections, "glance_store", "default_backend")
    # Our RBD backends by name: "rbd" for one cluster, one per cluster (named after it).
    enabled = _option(sections, "DEFAULT", "enabled_backends")
    rbd_backends = [e.split(":")[0] for e in (enabled.value if enabled else "").split(",")
                    if e.endswith(":rbd")] or [GLANCE_STORE]
    ours_default = ours.value if ours is not None else rbd_backends[0]
    old_default = _store_type(default or "file") or "file"
    chosen = ours_default if (ours is not None and ours.merge == "set") or \
        old_default not in kept else old_default
    ini.set("glance_store", "default_backend", chosen)
    for key in ("stores", "default_store"):
        ini.comment_out("glance_store", key, "cephstack: now enabled_backends/default_backend")
    return [f"Glance: legacy stores {stores or default} became backends "
            f"{', '.join(kept + rbd_backends)}; the default store is {chosen}"
            + ("" if chosen == ours_default else
               f" (services.glance.default_store: true makes it {ours_default})")]


def _check_secret(path: str, have: dict[str, str], want: dict[str, str], kind: str,
                  where: str) -> None:
    uuid, user = have.get("rbd_secret_uuid"), have.get("rbd_user")
    ours = want.get("rbd_secret_uuid")
    if user == want.get("rbd_user") and uuid and ours and uuid != ours:
        raise CephstackError(
            f"{path}: {where} rbd_secret_uuid is {uuid}, the libvirt secret the computes "
            f"already have for client.{user}; cephstack would change it to {ours} and break "
            f"volume attach and guest disks", hint=f"adopt it: services.{kind}.secret_uuid: "
            f"{uuid} (cephstack import --cinder-conf/--nova-conf reads it)")


def _options(section: Section) -> dict[str, str]:
    return {o.key: o.value for o in section.options}


def _check_cinder(path: str, ini: IniLines, sections: list[Section]) -> None:
    ours = {_options(s)["rbd_pool"]: s for s in sections
            if _options(s).get("volume_driver") == RBD_DRIVER}
    for name, _ in ini.sections():
        have = ini.section_options(name)
        if have.get("volume_driver") != RBD_DRIVER or \
                have.get("rbd_ceph_conf", CEPH_CONF) != CEPH_CONF:
            continue  # not a Ceph backend of this cluster
        pool = have.get("rbd_pool", "rbd")
        if pool not in ours:
            continue
        if group_name(name) != group_name(ours[pool].name):
            backend = have.get("volume_backend_name", name)
            uuid = have.get("rbd_secret_uuid")
            raise CephstackError(
                f"{path}: [{name}] is already the Ceph backend of pool {pool} (volume_backend_"
                f"name {backend}); cephstack would add [{ours[pool].name}] for the same pool",
                hint=f"adopt it, so its volumes and volume types keep working: services."
                f"cinder-volume.backends: {{{pool}: {{section: {name}, volume_backend_name: "
                f"{backend}}}}}" + (f" and services.cinder-volume.secret_uuid: {uuid} (the "
                                    "computes' libvirt secret)" if uuid else "")
                + " (cephstack import --cinder-conf reads it)")
        _check_secret(path, have, _options(ours[pool]), "cinder-volume", f"[{name}]")


def merge_service_file(path: str, text: str, sections: list[Section],
                       service_file: str) -> Merged:
    """Merge `sections` into the text of `path`, a glance, cinder or nova file. Raises when
    merging would break something the file already does (naming the spec change that
    adopts it)."""
    ini = IniLines.parse(text)
    notes = misnamed_sections(ini, sections)
    if service_file == "glance":
        notes += _migrate_glance(ini, sections)
    if service_file == "cinder":
        _check_cinder(path, ini, sections)
    if service_file == "nova" and (libvirt := next((s for s in sections
                                                    if s.name == "libvirt"), None)):
        _check_secret(path, ini.section_options("libvirt"), _options(libvirt), "nova",
                      "[libvirt]")
    _check_guarded(path, ini, sections)
    for section in sections:
        for option in section.options:
            ini.apply(option, section.name)
    return Merged(ini.text(), tuple(notes))


def _check_guarded(path: str, ini: IniLines, sections: list[Section]) -> None:
    """A choice the file made that cephstack would replace (GUARDED) is kept: the merge is
    refused, naming what would be lost and the spec setting that allows it."""
    for section in sections:
        for option in section.options:
            guard = GUARDED.get((section.name, option.key))
            have = ini.value(section.name, option.key)
            if guard and option.merge != "replace" and have and have != option.value:
                kind, lost = guard
                raise CephstackError(
                    f"{path}: [{section.name}] {option.key} is {have}; cephstack would change "
                    f"it to {option.value} and {lost}; nothing was changed",
                    hint=f"keep this host's choice (leave the {kind} role off this host), or "
                    f"allow the change in the spec: services.{kind}.replace_existing: true")


def adopted_pins(cinder_conf: str | None, nova_conf: str | None, cinder_user: str | None,
                 nova_user: str | None) -> dict[str, dict]:
    """What `cephstack import` pins from existing cinder.conf / nova.conf, as spec fields per
    service kind: the Ceph backends' sections and names, and the libvirt secret UUIDs."""
    out: dict[str, dict] = {}
    if cinder_conf is not None and cinder_user:
        ini, pins, uuids = IniLines.parse(cinder_conf), {}, set()
        for name, _ in ini.sections():
            have = ini.section_options(name)
            if have.get("volume_driver") == RBD_DRIVER and have.get("rbd_user") == cinder_user \
                    and have.get("rbd_ceph_conf", CEPH_CONF) == CEPH_CONF:
                pins[have.get("rbd_pool", "rbd")] = {
                    "section": name, "volume_backend_name": have.get("volume_backend_name", name)}
                uuids.add(have.get("rbd_secret_uuid"))
        cinder = {"backends": pins} if pins else {}
        if len(uuids) == 1 and (uuid := uuids.pop()):
            cinder["secret_uuid"] = uuid
        if cinder:
            out["cinder-volume"] = cinder
    if nova_conf is not None and nova_user:
        ini = IniLines.parse(nova_conf)
        if ini.value("libvirt", "rbd_user") == nova_user and \
                (uuid := ini.value("libvirt", "rbd_secret_uuid")):
            out["nova"] = {"secret_uuid": uuid}
    return out
