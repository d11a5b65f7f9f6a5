"""A bundle's MANIFEST.json, validated field by field before anything is installed.

Every host path must be a target render produces for the bundle's role (/etc/ceph and its
<cluster>.conf and keyrings, the services' own files, QEMU's directories on computes);
every bundle path is the host path's mirror inside the bundle (render/plain.py); modes are
capped by what the file needs (a key is never readable by others, nothing is writable by
group or others, no setuid/setgid/sticky bit). Each file's text is read here, once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass, field

from cephstack.errors import BundleRefused
from cephstack.host.bundle import Bundle, has_control, relative_path
from cephstack.host.contents import (
    KEY,
    NAME,
    UUID,
    check_ceph_conf,
    check_keyring,
    fragment_sections,
)
from cephstack.render.cephconf import QEMU_DIRECTORIES
from cephstack.render.ini import Section
from cephstack.render.libvirt import install_script, secret_xml
from cephstack.render.model import CEPH_CONF, CEPH_DIR
from cephstack.render.roles import ROLES, SERVICE_FILE_KINDS, SERVICE_FILES

MANIFEST = "MANIFEST.json"
INSTALL_SCRIPT = "secrets/install.sh"
_UNIX_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")  # as the spec's unix names
_N = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}"
_CONF = re.compile(rf"{CEPH_DIR}/(?P<cluster>{_N})\.conf")
_KEYRING = re.compile(rf"{CEPH_DIR}/(?P<cluster>{_N})\.(?P<entity>client\.{_N})\.keyring")
_ENTITY = re.compile(rf"client\.{_N}")
_UNIT = re.compile(r"[A-Za-z0-9][A-Za-z0-9@._-]{0,99}")
_VOLUME_TYPE = re.compile(rf"openstack volume type create {_N} --property "
                          rf"volume_backend_name={_N}( --availability-zone {_N})?")
_SHA256 = re.compile(r"[0-9a-f]{64}")
SERVICE_KINDS = tuple(SERVICE_FILES)  # glance, cinder-volume, cinder-backup, nova
# role -> the service files its fragments may merge into (as render's roles)
_ROLE_FILES = {**{role: tuple(dict.fromkeys(SERVICE_FILES[k] for k in services))
                  for role, services in ROLES.items()}, "rbd-mirror": ()}
FILE_CAP, KEY_CAP, DIR_CAP = 0o644, 0o640, 0o755


@dataclass(frozen=True)
class Target:
    host_path: str
    owner: str
    group: str
    mode: int
    text: str = ""  # files only
    holds_key: bool = False


@dataclass(frozen=True)
class Fragment:
    merge_into: str
    service_file: str
    sections: list[Section]


@dataclass
class Manifest:
    role: str
    files: list[Target] = field(default_factory=list)
    directories: list[Target] = field(default_factory=list)
    fragments: list[Fragment] = field(default_factory=list)
    secrets: list[dict] = field(default_factory=list)  # {"uuid", "entity", "xml", "value"}
    checks: list[dict] = field(default_factory=list)
    writable_by: list[dict] = field(default_factory=list)
    restart: list[str] = field(default_factory=list)
    volume_types: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _family(role: object, where: str) -> str:
    if isinstance(role, str) and role in ("controller", "backup", "compute"):
        return role
    for family in ("compute", "rbd-mirror"):
        if isinstance(role, str) and role.startswith(family + "-") and \
                re.fullmatch(_N, role.removeprefix(family + "-")):
            return family
    raise BundleRefused(f"{where}: unknown role {role!r} (controller, backup, compute, "
                        "compute-<zone>, rbd-mirror-<cluster>)")


class _Reader:
    """Typed access to the manifest's fields; every refusal names the field."""

    def __init__(self, bundle: Bundle, data: object) -> None:
        self.bundle, self.where = bundle, str(bundle.directory / MANIFEST)
        if not isinstance(data, dict):
            raise BundleRefused(f"{self.where}: not a cephstack bundle manifest (an object "
                                "with format_version \"1\")")
        self.data = data
        self.digests: dict = {}
        self.used: set[str] = set()

    def fail(self, where: str, problem: str) -> BundleRefused:
        return BundleRefused(f"{self.where}: {where}: {problem}")

    def read(self, rel: str, where: str) -> str:
        """A bundle file's text, checked against its sha256 when the manifest gives one."""
        text = self.bundle.read(rel, f"{self.where}: {where}")
        self.used.add(rel)
        want = self.digests.get(rel)
        if want is not None and want != hashlib.sha256(text.encode()).hexdigest():
            raise self.fail(f"sha256[{rel!r}]", f"{self.bundle.directory / rel} is not the "
                            "file render wrote (its digest differs)")
        return text

    def value(self, data: object, key: str, where: str, types: tuple[type, ...],
              what: str, default: object = ...) -> object:
        if not isinstance(data, dict):
            raise self.fail(where, f"expected an object, got {json.dumps(data)[:80]}")
        if key not in data:
            if default is not ...:
                return default
            raise self.fail(where, f"missing field {key!r}")
        value = data[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise self.fail(f"{where}.{key}", f"expected {what}, got {json.dumps(value)[:80]}")
        if isinstance(value, str) and has_control(value):
            raise self.fail(f"{where}.{key}", f"{value!r} holds a control character")
        return value

    def text(self, data: object, key: str, where: str, what: str,
             default: str | None = None) -> str:
        return str(self.value(data, key, where, (str,), what,
                              ... if default is None else default))

    def name(self, data: object, key: str, where: str, pattern: re.Pattern, what: str) -> str:
        value = self.text(data, key, where, what)
        if not pattern.fullmatch(value):
            raise self.fail(f"{where}.{key}", f"{value!r} is not {what}")
        return value

    def items(self, key: str, required: bool = True) -> list:
        value = self.value(self.data, key, "manifest", (list,), "a list",
                           ... if required else [])
        return list(value)

    def strings(self, key: str, pattern: re.Pattern, what: str) -> list[str]:
        out = []
        for i, v in enumerate(self.items(key, required=False)):
            if not isinstance(v, str) or has_control(v) or not pattern.fullmatch(v):
                raise self.fail(f"{key}[{i}]", f"{json.dumps(v)[:80]} is not {what}")
            out.append(v)
        return out


def _mode(r: _Reader, entry: dict, where: str, cap: int, what: str) -> int:
    text = r.text(entry, "mode", where, "an octal mode such as \"0640\"")
    if not re.fullmatch(r"[0-7]{3,4}", text):
        raise r.fail(f"{where}.mode", f"{text!r} is not an octal mode such as \"0640\"")
    mode = int(text, 8)
    if mode & 0o7000:
        raise r.fail(f"{where}.mode", f"{text} sets setuid, setgid or sticky bits: never "
                     f"needed by {what}")
    if mode & ~cap:
        why = {KEY_CAP: "a key is never readable by others, nor executable",
               FILE_CAP: "nothing is writable by group or others, no file is executable",
               DIR_CAP: "nothing is writable by group or others"}[cap]
        raise r.fail(f"{where}.mode", f"{text} gives more than {what} needs: at most "
                     f"{cap:04o} ({why})")
    return mode


def _owner(r: _Reader, entry: dict, where: str, root_only: bool) -> tuple[str, str]:
    owner = r.name(entry, "owner", where, _UNIX_NAME, "a Unix user name")
    group = r.name(entry, "group", where, _UNIX_NAME, "a Unix group name")
    if root_only and (owner, group) != ("root", "root"):
        raise r.fail(where, f"{owner}:{group}: cephstack installs this as root:root only")
    return owner, group


def _host_path(r: _Reader, entry: dict, key: str, where: str) -> str:
    value = r.text(entry, key, where, "an absolute path on the host")
    parts = value.split("/")
    if not value.startswith("/") or any(p in ("", ".", "..") for p in parts[1:]):
        raise r.fail(f"{where}.{key}", f"{value!r} is not a plain absolute path")
    return value


def read_manifest(bundle: Bundle) -> Manifest:
    text = bundle.read(MANIFEST, "manifest")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise BundleRefused(f"{bundle.directory / MANIFEST}: not valid JSON ({e})",
                            hint="cephstack render --out DIR writes DIR/<role>/MANIFEST.json"
                            ) from None
    r = _Reader(bundle, data)
    if data.get("format_version") != "1":
        raise r.fail("format_version", "expected \"1\", got "
                     f"{json.dumps(data.get('format_version'))[:40]}")
    role = r.text(data, "role", "manifest", "a role name")
    family = _family(role, f"{r.where}: role")
    m = Manifest(role)
    fsids = _fsids(r, data)
    r.digests = dict(r.value(data, "sha256", "manifest", (dict,),
                             "an object path -> sha256", {}))
    for rel, digest in r.digests.items():
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise r.fail(f"sha256[{rel!r}]", "expected a sha256 hex digest")
    _directories(r, m, family)
    _files(r, m, fsids, family)
    _fragments(r, m, family)
    _secrets(r, m, fsids, family)
    _checks(r, m)
    m.restart = r.strings("restart", _UNIT, "a systemd unit name")
    m.volume_types = r.strings("volume_types", _VOLUME_TYPE,
                               "an `openstack volume type create` command as render writes it")
    m.notes = r.strings("notes", re.compile(r".{0,2000}", re.DOTALL), "one line of text")
    _services(r, data, "manifest")
    if unused := sorted(set(r.digests) - r.used):
        raise r.fail("sha256", f"names {unused[0]!r}, which the manifest does not install")
    return m


def _services(r: _Reader, entry: dict, where: str) -> None:
    services = r.value(entry, "services", where, (list,), "a list of services", [])
    for i, kind in enumerate(services):
        if kind not in SERVICE_KINDS:
            raise r.fail(f"{where}.services[{i}]", f"unknown service {json.dumps(kind)[:40]}")


def _fsids(r: _Reader, data: dict) -> dict[str, str]:
    """cluster -> fsid: "clusters" of a several-cluster bundle, else "ceph" -> "fsid"."""
    fsid = r.name(data, "fsid", "manifest", UUID, "a cluster fsid (a UUID)")
    clusters = r.value(data, "clusters", "manifest", (dict,), "an object cluster -> fsid",
                       None)
    if not isinstance(clusters, dict):
        return {"ceph": fsid}
    for name in clusters:
        if not NAME.fullmatch(name):
            raise r.fail("clusters", f"invalid cluster name {name!r}")
        r.name(clusters, name, "clusters", UUID, "a cluster fsid (a UUID)")
    return dict(clusters)


def _directories(r: _Reader, m: Manifest, family: str) -> None:
    allowed = (CEPH_DIR,) + (QEMU_DIRECTORIES if family == "compute" else ())
    for i, entry in enumerate(r.items("directories")):
        where = f"directories[{i}]"
        path = _host_path(r, entry, "host_path", where)
        if path not in allowed:
            raise r.fail(f"{where}.host_path", f"{path!r} is not a directory a {family} "
                         f"bundle creates (only {', '.join(allowed)})")
        if any(d.host_path == path for d in m.directories):
            raise r.fail(f"{where}.host_path", f"{path} is listed twice")
        owner, group = _owner(r, entry, where, path == CEPH_DIR)
        m.directories.append(Target(path, owner, group,
                                    _mode(r, entry, where, DIR_CAP, "a directory")))


def _files(r: _Reader, m: Manifest, fsids: dict[str, str], family: str) -> None:
    for i, entry in enumerate(r.items("files")):
        where = f"files[{i}]"
        path = _host_path(r, entry, "host_path", where)
        conf, keyring = _CONF.fullmatch(path), _KEYRING.fullmatch(path)
        found = conf or keyring
        if found is None:
            raise r.fail(f"{where}.host_path", f"{path!r} is not a file cephstack installs "
                         f"(only {CEPH_DIR}/<cluster>.conf and "
                         f"{CEPH_DIR}/<cluster>.client.<user>.keyring)")
        if any(f.host_path == path for f in m.files):
            raise r.fail(f"{where}.host_path", f"{path} is listed twice")
        cluster = found.group("cluster")
        if cluster not in fsids:
            raise r.fail(f"{where}.host_path", f"cluster {cluster!r} is not one of the "
                         f"bundle's ({', '.join(fsids)})")
        entity = keyring.group("entity") if keyring else ""
        if entity == "client.admin" or entity.startswith("client.bootstrap-"):
            raise r.fail(f"{where}.host_path", f"{path}: cephstack never installs the "
                         "admin's or a bootstrap key on a service host")
        rel = relative_path(r.text(entry, "path", where, "a path in the bundle"),
                            f"{r.where}: {where}.path")
        if rel != path.lstrip("/"):
            raise r.fail(f"{where}.path", f"{rel!r}: a bundle mirrors the host, the file for "
                         f"{path} is {path.lstrip('/')}")
        r.value(entry, "secret", where, (bool,), "true or false", False)
        owner, group = _owner(r, entry, where, bool(conf))
        mode = _mode(r, entry, where, KEY_CAP if keyring else FILE_CAP,
                     "a keyring" if keyring else "a ceph.conf")
        text = r.read(rel, where)
        at = str(r.bundle.directory / rel)
        if keyring:
            check_keyring(text, entity, at)
        else:
            check_ceph_conf(text, fsids[cluster], family == "compute", at)
        m.files.append(Target(path, owner, group, mode, text, bool(keyring)))


def _fragments(r: _Reader, m: Manifest, family: str) -> None:
    allowed = _ROLE_FILES[family]
    for i, entry in enumerate(r.items("fragments")):
        where = f"fragments[{i}]"
        target = _host_path(r, entry, "merge_into", where)
        if target not in allowed:
            raise r.fail(f"{where}.merge_into", f"{target!r} is not a service file a "
                         f"{family} bundle merges into ({', '.join(allowed) or 'none'})")
        if any(f.merge_into == target for f in m.fragments):
            raise r.fail(f"{where}.merge_into", f"{target} is listed twice")
        kind = r.text(entry, "service_file", where, "glance, cinder or nova")
        if kind != SERVICE_FILE_KINDS[target]:
            raise r.fail(f"{where}.service_file", f"{target} is the {SERVICE_FILE_KINDS[target]} "
                         f"file, not {kind!r}")
        name = target.rsplit("/", 1)[1]
        rel = relative_path(r.text(entry, "path", where, "a path in the bundle"),
                            f"{r.where}: {where}.path")
        if rel != f"fragments/{name}":
            raise r.fail(f"{where}.path", f"{rel!r}: the fragment for {target} is "
                         f"fragments/{name}")
        r.read(rel, where)  # there, a regular file, not a link
        _services(r, entry, where)
        sections = r.value(entry, "sections", where, (list,), "a list of sections")
        m.fragments.append(Fragment(target, kind, fragment_sections(
            sections, kind, f"{r.where}: {where}.sections")))


def _secrets(r: _Reader, m: Manifest, fsids: dict[str, str], family: str) -> None:
    for i, entry in enumerate(r.items("secrets")):
        where = f"secrets[{i}]"
        if family != "compute":
            raise r.fail(where, f"a {family} bundle defines no libvirt secret")
        uuid = r.name(entry, "uuid", where, UUID, "a lower-case UUID")
        entity = r.name(entry, "entity", where, _ENTITY, "a client.<user> entity")
        cluster = r.text(entry, "cluster", where, "a cluster name", "ceph")
        if cluster not in fsids:
            raise r.fail(f"{where}.cluster", f"{cluster!r} is not one of the bundle's clusters")
        if any(s["uuid"] == uuid for s in m.secrets):
            raise r.fail(f"{where}.uuid", f"{uuid} is listed twice")
        xml = r.read(f"secrets/{uuid}.xml", where)
        if xml != secret_xml(uuid, entity, fsids[cluster]):
            raise r.fail(where, f"secrets/{uuid}.xml is not the secret definition cephstack "
                         f"writes for {entity}")
        key = r.read(f"secrets/{uuid}.key", where).strip()
        try:
            value = base64.b64decode(key, validate=True) if KEY.fullmatch(key) else None
        except (binascii.Error, ValueError):
            value = None  # refused only when the secrets are defined (see install)
        m.secrets.append({"uuid": uuid, "entity": entity, "xml": xml, "value": value,
                          "file": f"secrets/{uuid}.key"})
    if family == "compute":  # the note on --root points the operator to it: as render wrote it
        script = r.read(INSTALL_SCRIPT, "secrets")
        if script != install_script([s["uuid"] for s in m.secrets]):
            raise r.fail("secrets", f"{INSTALL_SCRIPT} is not the script cephstack writes "
                         "for these secrets")


def _checks(r: _Reader, m: Manifest) -> None:
    confs = {f.host_path for f in m.files if not f.holds_key}
    keyrings = {f.host_path for f in m.files if f.holds_key}
    for i, entry in enumerate(r.items("checks")):
        where = f"checks[{i}]"
        check = {"service": r.text(entry, "service", where, "a service", ""),
                 "unix_user": r.name(entry, "unix_user", where, _UNIX_NAME, "a Unix user"),
                 "entity": r.name(entry, "entity", where, _ENTITY, "a client.<user> entity"),
                 "pool": r.name(entry, "pool", where, NAME, "a pool name"),
                 "keyring": _host_path(r, entry, "keyring", where),
                 "conf": _host_path(r, {"conf": CEPH_CONF, **entry}, "conf", where)}
        if check["service"] not in SERVICE_KINDS:
            raise r.fail(f"{where}.service", f"unknown service {check['service']!r}")
        if check["keyring"] not in keyrings or check["conf"] not in confs:
            raise r.fail(where, "its keyring and conf must be files of the bundle")
        m.checks.append(check)
    qemu = {d.host_path for d in m.directories if d.host_path in QEMU_DIRECTORIES}
    for i, entry in enumerate(r.items("writable_by", required=False)):
        where = f"writable_by[{i}]"
        w = {"unix_user": r.name(entry, "unix_user", where, _UNIX_NAME, "a Unix user"),
             "directory": _host_path(r, entry, "directory", where)}
        if w["directory"] not in qemu:
            raise r.fail(f"{where}.directory", f"{w['directory']!r} is not one of QEMU's "
                         "directories of this bundle")
        m.writable_by.append(w)
