"""What `cephstack render` reads from the fleet's clusters, every cluster at once (one
thread each): their fsids, monitors and keys for the files, or only the fsids of a role's
clusters for --merge-into (an edge compute merges while another site is down).

One cluster that cannot be read fails the whole render before anything is written: files
half right for their clusters would be wrong. A fleet of one reports its error as it is;
several name each cluster that failed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cephstack.errors import CephstackError
from cephstack.render.model import ClusterFacts, names_clusters
from cephstack.session.connect import Settings, connect
from cephstack.session.fleet import ClusterRun, each, refuse_overrides
from cephstack.spec.fleet import split
from cephstack.spec.load import Spec


def _read(settings: Settings, spec: Spec, clusters: tuple[str, ...] | None,
          read: Callable[[Any], Any], failed: Callable[[list[ClusterRun]],
                                                       CephstackError]) -> dict[str, Any]:
    refuse_overrides(settings, spec)  # with several clusters, the spec reaches each
    runs = [ClusterRun(name, part) for name, part in split(spec).items()
            if clusters is None or name in clusters]
    found: dict[str, Any] = {}

    def one(run: ClusterRun) -> None:
        with connect(settings, run.spec) as conn:
            found[run.name] = read(conn)

    each(runs, one)
    bad = [r for r in runs if not r.ok]
    if not bad:
        return found
    if not names_clusters(spec):  # a fleet of one: its own error, as it is
        raise bad[0].error
    first = bad[0].error
    error = failed(bad)
    error.exit_code = getattr(first, "exit_code", error.exit_code)
    error.kind = getattr(first, "kind", error.kind)
    raise error


def observed_facts(settings: Settings, spec: Spec) -> dict[str, ClusterFacts]:
    """fsid, monitors and keys of every cluster, by name."""
    from cephstack.ceph.observe import observe
    from cephstack.session.drift import facts_of

    def failed(bad: list[ClusterRun]) -> CephstackError:
        return CephstackError("".join(f"cluster {r.name}: {r.error}\n" for r in bad)
                              + "nothing rendered")

    return _read(settings, spec, None, lambda conn: facts_of(observe(conn, monmap=True)),
                 failed)


def read_fsids(settings: Settings, spec: Spec, clusters: tuple[str, ...],
               path: Path) -> dict[str, str]:
    """The fsid of each of `clusters` (the only fact merged settings need: no mon command).
    One that cannot be read fails the merge, every failed cluster named, before `path` is
    touched."""
    def failed(bad: list[ClusterRun]) -> CephstackError:
        return CephstackError(
            "".join(f"cluster {r.name}: {getattr(r.error, 'message', r.error)}\n" for r in bad)
            + f"nothing merged: {path} is unchanged",
            hint=f"check clusters.{bad[0].name} (conf, keyring, client) in the spec and that "
                 "its monitors run")

    return _read(settings, spec, clusters, lambda conn: conn.fsid(), failed)
