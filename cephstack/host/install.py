"""`cephstack host install BUNDLE`: put a rendered bundle in place on an OpenStack host.

The bundle is untrusted input (host/bundle.py, host/manifest.py): every path, owner, mode
and option of MANIFEST.json is validated and every file read once, without following a
link. Then, before the first change, every target is located under --root without
following links out of it (host/rootpath.py) and checked (owners exist, nothing there is a
link, FIFO or directory where a file goes, merges would not break a service file). Only then:
create missing directories (explicit owner and mode), install files atomically with their
owner, group and mode, merge the service fragments into the services' own files, define
libvirt secrets (compute), and check as each service's Unix user that it reads its keyring
and reaches its pool. Idempotent; a dry run changes nothing; a refusal changes nothing.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from cephstack.errors import CephstackError
from cephstack.host import keysupport
from cephstack.host import secrets as libvirt_secrets
from cephstack.host.bundle import Bundle, kind, show
from cephstack.host.checks import CheckResult, service_can_connect, user_can_write
from cephstack.host.keysupport import host_key_support
from cephstack.host.manifest import MANIFEST, Manifest, Target, read_manifest
from cephstack.host.merge import BACKUP_SUFFIX, ORIGINAL_SUFFIX, MergeOutcome, merge_file
from cephstack.host.rootpath import OnHost, locate, open_root
from cephstack.render.model import CEPH_DIR
from cephstack.render.roles import SERVICE_FILES, SERVICE_UNITS
from cephstack.safefiles import (
    account_facts,
    directory_problem,
    open_dir,
    read_regular_file,
    resolve_owner,
    write_atomic,
)

__all__ = ["MANIFEST", "InstallReport", "install_bundle"]


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
    key_support: dict = field(default_factory=dict)  # host/keysupport.py: librados, aes256k
    service_keys: list[dict] = field(default_factory=list)  # per service: key type, usable

    @property
    def changed(self) -> bool:
        return any(c["state"] != "unchanged" for c in self.changes) or \
            any(m.changed for m in self.merges) or any(s["changed"] for s in self.secrets)

    @property
    def passed(self) -> bool:
        return all(c.ok for c in self.checks)


@dataclass
class _Plan:
    """Where each target lands and what happens to it, all decided before any change."""

    directories: list[tuple[Target, OnHost, str]] = field(default_factory=list)
    files: list[tuple[Target, OnHost, str]] = field(default_factory=list)
    merges: list[OnHost] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def check(self, what: Callable[[], object]) -> object:
        try:
            return what()
        except CephstackError as e:
            self.problems.append(e.message)
            return None


def _not_here(place: OnHost, want: str) -> str | None:
    """Why `place` cannot become `want` ("directory" or "regular file"), or None."""
    if place.mode is None or (stat.S_ISDIR(place.mode) if want == "directory"
                              else stat.S_ISREG(place.mode)):
        return None
    what = kind(place.mode)
    if stat.S_ISLNK(place.mode):
        what += f" (to {show(os.readlink(place.real))})"
    return f"{show(place.shown)} is {what}, not a {want}: cephstack never writes through " \
           "a link, nor over anything but a regular file"


def _file_state(t: Target, place: OnHost) -> str:
    found = read_regular_file(str(place.real), "installed file")
    if found is None:
        return "created"
    text, st = found
    try:
        uid, gid = resolve_owner(t.owner, t.group)
    except CephstackError:
        return "updated"  # a missing account is reported on its own
    same = (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (t.mode, uid, gid)
    return "unchanged" if text == t.text and same else "updated"


@dataclass(frozen=True)
class _Root:
    real: Path  # links resolved: where the checks look
    given: Path  # as the operator gave it: what the report shows

    def locate(self, host_path: str) -> OnHost:
        return locate(self.real, host_path, self.given)


def _ceph_dir_usable(plan: _Plan, root: _Root, m: Manifest) -> bool:
    """Every file goes into /etc/ceph: never through a link, keys never into a directory
    others may write. When it is refused, so is each file in it: said once."""
    if not m.files:
        return True
    place = plan.check(lambda: root.locate(CEPH_DIR))
    if not isinstance(place, OnHost):
        return False
    problem = _not_here(place, "directory")
    if problem is None and place.mode is not None and any(t.holds_key for t in m.files) and \
            (shared := directory_problem(place.mode)):
        problem = f"{show(place.shown)} {shared}"
    if problem:
        plan.problems.append(problem)
    return problem is None


def _precheck(m: Manifest, root: _Root, define_secrets: bool) -> _Plan:
    """Everything that would fail half-way, found before the first change."""
    plan = _Plan()
    for t in m.directories + m.files:
        plan.problems += [f"the {account} of {t.host_path} does not exist on this host"
                          for account, exists in account_facts(t.owner, t.group).items()
                          if not exists]
    for user in sorted({c["unix_user"] for c in m.checks + m.writable_by}):
        try:
            resolve_owner(user, None)
        except CephstackError:
            plan.problems.append(f"the service user {user!r} does not exist on this host")
    for t in m.directories:
        place = plan.check(lambda t=t: root.locate(t.host_path))
        if isinstance(place, OnHost):
            if problem := _not_here(place, "directory"):
                plan.problems.append(problem)
            state = "created" if place.mode is None else "unchanged"
            plan.directories.append((t, place, state))
    for t in m.files if _ceph_dir_usable(plan, root, m) else ():
        place = plan.check(lambda t=t: root.locate(t.host_path))
        if isinstance(place, OnHost):
            if problem := _not_here(place, "regular file"):
                plan.problems.append(problem)
                continue
            state = plan.check(lambda t=t, p=place: _file_state(t, p))
            if isinstance(state, str):
                plan.files.append((t, place, state))
    for fragment in m.fragments:
        place = plan.check(lambda f=fragment: root.locate(f.merge_into))
        if not isinstance(place, OnHost):
            continue
        if place.mode is None:
            plan.problems.append(f"{show(place.shown)} does not exist: is the "
                                 f"{fragment.service_file} service installed on this host? "
                                 "(--service NAME installs only what the services this "
                                 "host runs need)")
            continue
        backup = plan.check(lambda f=fragment: root.locate(f.merge_into + BACKUP_SUFFIX))
        original = plan.check(lambda f=fragment: root.locate(f.merge_into + ORIGINAL_SUFFIX))
        if not isinstance(backup, OnHost) or not isinstance(original, OnHost):
            continue
        if problem := _not_here(place, "regular file") or _not_here(backup, "regular file") \
                or _not_here(original, "regular file"):
            plan.problems.append(problem)
            continue
        # a merge that would break the file (a duplicate backend...) fails here, first
        if plan.check(lambda f=fragment, p=place: merge_file(
                p.real, f.sections, f.service_file, dry_run=True)) is not None:
            plan.merges.append(place)
    if define_secrets and m.secrets:
        if problem := libvirt_secrets.libvirt_problem():
            plan.problems.append(problem)
        for s in m.secrets:
            if s["value"] is None:
                plan.problems.append(f"{s['file']} of the bundle does not hold a base64 key")
    if plan.problems:
        unique = list(dict.fromkeys(plan.problems))
        raise CephstackError("cannot install the bundle on this host: " + (
            unique[0] if len(unique) == 1 else "\n" + "\n".join(f"  - {p}" for p in unique)),
            hint="nothing was changed: create the missing users, groups or service files, "
            "and leave no link, FIFO or directory where cephstack installs a file")
    return plan


def _directory(t: Target, place: OnHost) -> None:
    uid, gid = resolve_owner(t.owner, t.group)
    parent = open_dir(place.real.parent, 0o755)  # missing parents: 0755, whatever the umask
    try:
        os.mkdir(place.real.name, 0o700, dir_fd=parent)
        fd = os.open(place.real.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW,
                     dir_fd=parent)
        try:
            os.fchown(fd, uid, gid)
            os.fchmod(fd, t.mode)
        finally:
            os.close(fd)
    finally:
        os.close(parent)


def install_bundle(bundle: Path, root: Path = Path("/"), dry_run: bool = False,
                   libvirt_uri: str | None = None, check: bool = True,
                   progress: Callable[[str], None] = lambda _: None,
                   trust_bundle_permissions: bool = False,
                   services: tuple[str, ...] = ()) -> InstallReport:
    """`services`: only these of the role's services run on this host (a storage node
    with cinder-volume alone from the controller bundle): only their keyrings, settings,
    checks and restarts."""
    with Bundle(bundle, trust_bundle_permissions) as opened:
        manifest = only_services(read_manifest(opened), services) if services else \
            read_manifest(opened)
    host = _Root(open_root(root), root)
    define_secrets = bool(manifest.secrets) and (libvirt_uri is not None or
                                                 host.real == Path("/"))
    plan = _precheck(manifest, host, define_secrets and not dry_run)
    report = InstallReport(manifest.role, notes=list(manifest.notes),
                           volume_types=list(manifest.volume_types))
    support = host_key_support(probe=False)
    report.key_support = keysupport.as_dict(support)
    report.service_keys = keysupport.service_keys(manifest, support)
    for t, place, state in plan.directories:
        if state == "created" and not dry_run:
            _directory(t, place)
        report.changes.append({"path": f"{place.shown}/", "state": state, "holds_key": False})
    for t, place, state in plan.files:
        progress(f"file {t.host_path}")
        if state != "unchanged" and not dry_run:
            write_atomic(str(place.real), t.text, t.mode, t.owner, t.group, dir_mode=0o755,
                         secret=t.holds_key)
        report.changes.append({"path": str(place.shown), "state": state,
                               "holds_key": t.holds_key})
    for fragment, place in zip(manifest.fragments, plan.merges, strict=True):
        progress(f"merge into {fragment.merge_into}")
        report.merges.append(_as_shown(merge_file(place.real, fragment.sections,
                                                  fragment.service_file, dry_run), place))
    for merged in report.merges:
        report.notes += merged.notes
    if manifest.secrets and not define_secrets:
        report.notes.append("libvirt secrets not defined (--root given without "
                            "--libvirt-uri): run secrets/install.sh on the host")
    elif manifest.secrets and dry_run:
        report.secrets = [{"uuid": s["uuid"], "usage": s["entity"], "changed": False}
                          for s in manifest.secrets]
    elif manifest.secrets:
        report.secrets = libvirt_secrets.define(manifest.secrets,
                                                libvirt_uri or "qemu:///system")
    report.restart = _to_restart(manifest, report)
    if check and not dry_run:
        report.checks = _checks(manifest, host, progress)
    return report


def _service_keyrings(m: Manifest) -> dict[str, set[str]]:
    """keyring host path -> the services that read it (from the bundle's checks)."""
    out: dict[str, set[str]] = {}
    for c in m.checks:
        out.setdefault(c["keyring"], set()).add(c["service"])
    return out


def _to_restart(m: Manifest, report: InstallReport) -> list[str]:
    """The units whose service reads something that changed: after rotating one user, only
    its services; a changed ceph.conf or directory, every service of the bundle."""
    readers, services = _service_keyrings(m), set()
    for t, change in zip(m.directories + m.files, report.changes, strict=True):
        if change["state"] == "unchanged":
            continue
        if not t.holds_key or t.host_path not in readers:
            return list(m.restart)  # a conf or directory: everything reads it
        services |= readers[t.host_path]
    for fragment, merged in zip(m.fragments, report.merges, strict=True):
        if merged.changed:
            services |= {s for s, f in SERVICE_FILES.items() if f == fragment.merge_into}
    if any(s["changed"] for s in report.secrets):
        services.add("nova")
    units = {SERVICE_UNITS[s] for s in services if s in SERVICE_UNITS}
    return [u for u in m.restart if u in units]


def only_services(m: Manifest, services: tuple[str, ...]) -> Manifest:
    """The part of a role's bundle that `services` need, refused when the bundle does not
    serve one of them."""
    served = {c["service"] for c in m.checks}
    if missing := [s for s in services if s not in served]:
        raise CephstackError(
            f"the {m.role} bundle serves {', '.join(sorted(served)) or 'no service'}, not "
            f"{', '.join(missing)}", hint="give --service once per service this host runs")
    readers = _service_keyrings(m)
    files = {SERVICE_FILES[s] for s in services if s in SERVICE_FILES}
    units = {SERVICE_UNITS[s] for s in services}
    return replace(m, files=[t for t in m.files if not t.holds_key
                             or readers.get(t.host_path, set()) & set(services)],
                   fragments=[f for f in m.fragments if f.merge_into in files],
                   checks=[c for c in m.checks if c["service"] in services],
                   restart=[u for u in m.restart if u in units])


def _as_shown(outcome: MergeOutcome, place: OnHost) -> MergeOutcome:
    """The merge as the operator names the file (under --root as given)."""
    real, shown = str(place.real), str(place.shown)
    head = (f"--- {real}\n", f"+++ {real} (cephstack)\n")
    diff = outcome.diff
    if diff.startswith(head[0] + head[1]):
        diff = f"--- {shown}\n+++ {shown} (cephstack)\n" + diff[len(head[0] + head[1]):]
    return replace(outcome, path=shown, diff=diff)


def _checks(m: Manifest, root: _Root, progress: Callable[[str], None]) -> list[CheckResult]:
    results = []
    for c in m.checks:
        # a bundle for several clusters names each check's <cluster>.conf
        conf, keyring = root.locate(c["conf"]).real, root.locate(c["keyring"]).real
        progress(f"check as {c['unix_user']}: {c['entity']} on pool {c['pool']}")
        results.append(service_can_connect(c["unix_user"], str(conf), str(keyring),
                                           c["entity"], c["pool"]))
    for w in m.writable_by:
        results.append(user_can_write(w["unix_user"], str(root.locate(w["directory"]).real)))
    # As the operator named the root (the checks ran on its links resolved).
    real, given = f"{root.real}/", str(root.given).rstrip("/") + "/"
    return [replace(r, what=r.what.replace(real, given)) for r in results] \
        if real != given else results
