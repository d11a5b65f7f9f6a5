"""`cephstack host install BUNDLE`: put a rendered bundle in place on an OpenStack host.

From the bundle's MANIFEST.json: create missing directories (explicit owner and mode), install
files atomically with their owner, group and mode, merge the service fragments into the
services' own files, define libvirt secrets (compute), then check as each service's Unix
user that it reads its keyring and reaches its pool. Idempotent; a dry run changes nothing.
Every owner and target is checked before the first change.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cephstack.errors import CephstackError
from cephstack.host.checks import CheckResult, service_can_connect, user_can_write
from cephstack.host.merge import MergeOutcome, merge_file
from cephstack.render.drift import read_rendered
from cephstack.render.ini import sections_from_data
from cephstack.render.model import CEPH_CONF
from cephstack.safefiles import open_dir, resolve_owner, write_atomic

MANIFEST = "MANIFEST.json"


@dataclass
class InstallReport:
    role: str
    changes: list[dict] = field(default_factory=list)  # {"path", "state", "holds_key"}
    merges: list[MergeOutcome] = field(default_factory=list)
    secrets: list[dict] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)
    restart: list[str] = field(default_factory=list)
    volume_types: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(c["state"] != "unchanged" for c in self.changes) or \
            any(m.changed for m in self.merges) or any(s["changed"] for s in self.secrets)

    @property
    def passed(self) -> bool:
        return all(c.ok for c in self.checks)


def load_manifest(bundle: Path) -> dict:
    path = bundle / MANIFEST
    try:
        manifest = json.loads(read_rendered(path) or "null")
    except ValueError as e:
        raise CephstackError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format_version") != "1" or \
            not isinstance(manifest.get("files"), list):
        raise CephstackError(f"{path}: not a cephstack bundle manifest (format_version 1)",
                             hint="cephstack render --out DIR writes DIR/<role>/MANIFEST.json")
    return manifest


def _on_host(root: Path, host_path: str) -> Path:
    if not host_path.startswith("/") or ".." in host_path.split("/"):
        raise CephstackError(f"manifest path {host_path!r} is not a plain absolute path")
    return root / host_path.lstrip("/")


def _owners(manifest: dict) -> list[tuple[str, str]]:
    return [(e["owner"], e["group"]) for e in manifest["files"] + manifest["directories"]]


def _precheck(manifest: dict, root: Path) -> None:
    """Everything that would fail half-way, found before the first change."""
    problems = []
    for owner, group in dict.fromkeys(_owners(manifest)):
        try:
            resolve_owner(owner, group)
        except CephstackError as e:
            problems.append(e.message)
    users = {c["unix_user"] for c in manifest["checks"]}
    for user in sorted(users):
        try:
            resolve_owner(user, None)
        except CephstackError:
            problems.append(f"the service user {user!r} does not exist on this host")
    for fragment in manifest["fragments"]:
        target = _on_host(root, fragment["merge_into"])
        try:
            regular = stat.S_ISREG(os.lstat(target).st_mode)
        except FileNotFoundError:
            problems.append(f"{target} does not exist: is {fragment['service_file']} "
                            "installed on this host?")
            continue
        if not regular:
            problems.append(f"{target} is not a regular file (a link?): cephstack does not "
                            "write through links")
            continue
        try:  # a merge that would break the file (a duplicate backend...) fails here, first
            merge_file(target, sections_from_data(fragment["sections"]),
                       fragment["service_file"], dry_run=True)
        except CephstackError as e:
            problems.append(str(e))
    if problems:
        raise CephstackError("cannot install the bundle on this host:\n" +
                             "\n".join(f"  - {p}" for p in dict.fromkeys(problems)),
                             hint="create the users/groups or install the services first; "
                             "nothing was changed")


def _directory(entry: dict, root: Path, dry_run: bool) -> str:
    path = _on_host(root, entry["host_path"])
    if path.is_dir() and not path.is_symlink():
        return "unchanged"  # an existing directory keeps its owner and mode
    if path.exists() or path.is_symlink():
        raise CephstackError(f"{path} exists and is not a directory")
    if not dry_run:
        uid, gid = resolve_owner(entry["owner"], entry["group"])
        parent = open_dir(path.parent, 0o755)  # missing parents: 0755, whatever the umask
        try:
            os.mkdir(path.name, 0o700, dir_fd=parent)
            fd = os.open(path.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW,
                         dir_fd=parent)
            try:
                os.fchown(fd, uid, gid)
                os.fchmod(fd, int(entry["mode"], 8))
            finally:
                os.close(fd)
        finally:
            os.close(parent)
    return "created"


def _file(entry: dict, bundle: Path, root: Path, dry_run: bool) -> str:
    text = read_rendered(bundle / entry["path"])
    if text is None:
        raise CephstackError(f"{bundle / entry['path']} is missing from the bundle")
    target = _on_host(root, entry["host_path"])
    mode = int(entry["mode"], 8)
    uid, gid = resolve_owner(entry["owner"], entry["group"])
    current = read_rendered(target)
    if current == text:
        st = os.lstat(target)
        if (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (mode, uid, gid):
            return "unchanged"
    if not dry_run:
        write_atomic(str(target), text, mode, entry["owner"], entry["group"], dir_mode=0o755,
                     secret=entry.get("secret", False))
    return "created" if current is None else "updated"


def install_bundle(bundle: Path, root: Path = Path("/"), dry_run: bool = False,
                   libvirt_uri: str | None = None, check: bool = True,
                   progress: Callable[[str], None] = lambda _: None) -> InstallReport:
    manifest = load_manifest(bundle)
    _precheck(manifest, root)
    report = InstallReport(manifest.get("role", "?"), notes=list(manifest.get("notes", [])),
                           volume_types=list(manifest.get("volume_types", [])))
    for entry in manifest["directories"]:
        state = _directory(entry, root, dry_run)
        report.changes.append({"path": str(_on_host(root, entry["host_path"])) + "/",
                               "state": state, "holds_key": False})
    for entry in manifest["files"]:
        progress(f"file {entry['host_path']}")
        report.changes.append({"path": str(_on_host(root, entry["host_path"])),
                               "state": _file(entry, bundle, root, dry_run),
                               "holds_key": bool(entry.get("secret"))})
    for fragment in manifest["fragments"]:
        progress(f"merge into {fragment['merge_into']}")
        report.merges.append(merge_file(_on_host(root, fragment["merge_into"]),
                                        sections_from_data(fragment["sections"]),
                                        fragment["service_file"], dry_run))
    for m in report.merges:
        report.notes += m.notes
    if manifest["secrets"]:
        report.secrets = _secrets(bundle, manifest, root, dry_run, libvirt_uri, report)
    if report.changed:
        report.restart = list(manifest.get("restart", []))
    if check and not dry_run:
        report.checks = _checks(manifest, root, progress)
    return report


def _secrets(bundle: Path, manifest: dict, root: Path, dry_run: bool,
             libvirt_uri: str | None, report: InstallReport) -> list[dict]:
    if libvirt_uri is None and root != Path("/"):
        report.notes.append("libvirt secrets not defined (--root given without "
                            "--libvirt-uri): run secrets/install.sh on the host")
        return []
    if dry_run:
        return [{"uuid": s["uuid"], "usage": s["entity"], "changed": False}
                for s in manifest["secrets"]]
    from cephstack.render.libvirt import install

    done = install(str(bundle / "secrets"), libvirt_uri or "qemu:///system")
    return [{"uuid": s.uuid, "usage": s.usage, "changed": s.changed} for s in done]


def _checks(manifest: dict, root: Path,
            progress: Callable[[str], None]) -> list[CheckResult]:
    results = []
    for c in manifest["checks"]:
        # a bundle for several clusters names each check's <cluster>.conf
        conf = str(_on_host(root, c.get("conf", CEPH_CONF)))
        progress(f"check as {c['unix_user']}: {c['entity']} on pool {c['pool']}")
        results.append(service_can_connect(c["unix_user"], conf, str(_on_host(root, c["keyring"])),
                                           c["entity"], c["pool"]))
    for w in manifest.get("writable_by", []):
        results.append(user_can_write(w["unix_user"], str(_on_host(root, w["directory"]))))
    return results
