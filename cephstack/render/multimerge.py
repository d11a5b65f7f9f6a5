"""`cephstack render --merge-into PATH --role NAME` for a spec with `clusters:`: merge into a
host's glance-api.conf, cinder.conf or nova.conf exactly the sections that host role's
bundle (cephstack/render/multirender.py) would merge into it with `cephstack host install`.

With several clusters a file's settings depend on the host: the controller's Glance has a
store per cluster and its Cinder a backend per cluster; a compute-<zone> nova.conf names
its zone's pool and Glance store. So the operator names the role, as the bundles do.

Only the clusters the role's bundle names (its MANIFEST.json `clusters`) are reached, for
their fsids (the libvirt secret UUIDs derive from them): an edge compute merges while
another site is down. A cluster that cannot be reached fails the merge before the file
is touched: a file half right for its clusters would be wrong.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from cephstack.commands.multicommands import SeveralClustersUsage, refuse_overrides
from cephstack.errors import CephstackError
from cephstack.host.merge import MergeOutcome, merge_file
from cephstack.render.ini import Section
from cephstack.render.multirender import roles
from cephstack.render.plain import SERVICE_FILE_KINDS
from cephstack.spec.fleet import split
from cephstack.spec.load import Spec

# "glance" -> /etc/glance/glance-api.conf: where each service file lives in a bundle.
SERVICE_TARGETS = {service: target for target, service in SERVICE_FILE_KINDS.items()}


@dataclass(frozen=True)
class RoleMerge:
    """What merging a role's settings into one service file needs."""

    role: str
    service: str  # glance, cinder or nova
    target: str  # the file the bundle merges into: /etc/cinder/cinder.conf
    clusters: tuple[str, ...]  # the clusters the role's bundle names, in its order


def _fsids(spec: Spec, known: dict[str, str], mark: str) -> dict[str, str]:
    """Every cluster's fsid: the ones read, a placeholder for the others."""
    return {c: known.get(c, f"(fsid of {c} not read: {mark})") for c in spec.clusters}


def choose(spec: Spec, role: str | None, service: str) -> RoleMerge:
    """The role's merge into `service`'s file, checked before any cluster is reached."""
    found = {r.name: r for r in roles(spec, _fsids(spec, {}, "listing"))}
    names = ", ".join(found) or "none"
    if role is None:
        raise SeveralClustersUsage(
            f"--merge-into with several clusters ({', '.join(spec.clusters)}) needs --role: "
            f"the settings depend on the host (roles: {names})",
            hint="give the role whose bundle this host would install, e.g. --role "
                 f"{next(iter(found), 'controller')}")
    if role not in found:
        raise SeveralClustersUsage(f"--role {role}: no such role in {spec.path} (roles: {names})",
                                   hint="the role names are the bundles' directories")
    target = SERVICE_TARGETS[service]
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
    """The sections the role's bundle merges into its target, from the fsids of the role's
    clusters alone. That they name no other cluster is checked, not assumed: rendered with
    two different placeholders for the others, they must not change."""
    def render(mark: str) -> list[Section]:
        [role] = [r for r in roles(spec, _fsids(spec, fsids, mark)) if r.name == chosen.role]
        return role.fragments[chosen.target]

    sections = render("a")
    if sections != render("b"):
        raise CephstackError(f"internal: role {chosen.role}'s {chosen.service} settings depend "
                             f"on a cluster other than {', '.join(chosen.clusters)}")
    return sections


def read_fsids(args: argparse.Namespace, spec: Spec, clusters: tuple[str, ...],
               path: Path) -> dict[str, str]:
    """The fsid of each of `clusters`, read at once (one thread each). One that cannot be
    read fails the whole merge, every failed cluster named, before `path` is touched."""
    from cephstack.commands.common import connect
    from cephstack.session.fleet import ClusterRun, each

    runs = [ClusterRun(name, part) for name, part in split(spec).items() if name in clusters]
    found: dict[str, str] = {}

    def read(run: ClusterRun) -> None:
        with connect(args, run.spec) as conn:
            found[run.name] = conn.fsid()  # the only fact the settings need

    each(runs, read)
    failed = [r for r in runs if not r.ok]
    if not failed:
        return found
    first = failed[0].error
    error = CephstackError(
        "".join(f"cluster {r.name}: {getattr(r.error, 'message', r.error)}\n" for r in failed)
        + f"nothing merged: {path} is unchanged",
        hint=f"check clusters.{failed[0].name} (conf, keyring, client) in the spec and that "
             "its monitors run")
    error.exit_code = getattr(first, "exit_code", error.exit_code)
    error.kind = getattr(first, "kind", error.kind)
    raise error


def merge_for_role(args: argparse.Namespace, spec: Spec, path: Path,
                   service: str) -> tuple[RoleMerge, MergeOutcome]:
    """Merge the role `args.role` would install into `path` (`service`'s file)."""
    refuse_overrides(args, spec)
    chosen = choose(spec, args.role, service)
    fsids = read_fsids(args, spec, chosen.clusters, path)
    return chosen, merge_file(path, role_sections(spec, chosen, fsids), service, args.dry_run)
