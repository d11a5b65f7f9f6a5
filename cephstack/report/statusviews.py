"""Views of a Status: one line per pool (status_text), everything (status_json), and
Prometheus' text exposition format for a textfile collector (status_prometheus); and of
every cluster's (fleet_text, fleet_json, fleet_prometheus): one cluster as those, several
with a section, a document or a cluster label each. Pure.

Names are data (a pool, image or user may hold any character, ESC included): text shows
them through cephstack.text.printable, so nothing raw reaches a terminal."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from cephstack import FORMAT_VERSION
from cephstack.day2.keystatus import key_json, key_notes
from cephstack.day2.mirrorstatus import mirrored_json, summary_line
from cephstack.day2.status import FleetStatus, PoolStatus, Status
from cephstack.day2.stores import gap_lines, gaps_json
from cephstack.errors import error_json, error_text
from cephstack.text import printable, printable_lines

# -- views --------------------------------------------------------------------------------

def human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    value, unit = float(n), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if value < 1024 or unit == "PiB":
            break
        value /= 1024
    return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"


def _percent(ratio: float | None) -> str:
    if ratio is None:
        return "-"
    return f"{ratio * 100:.0f}%" if ratio >= 0.01 or ratio == 0 else "<1%"


def _count(n: int | None, complete: bool = True) -> str:
    if n is None:
        return "-"
    return str(n) if complete else f">={n}"


def pg_summary(states: dict[str, int] | None) -> str:
    if states is None:
        return "unknown"
    if not states:
        return "0"
    by_count = sorted(states.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{n} {s}" for s, n in by_count)


def quota_cell(p: PoolStatus) -> str:
    parts = []
    if p.quota_bytes:
        parts.append(f"{human_bytes(p.quota_bytes)} ({_percent(p.quota_bytes_ratio)})")
    if p.quota_objects:
        parts.append(f"{p.quota_objects} obj ({_percent(p.quota_objects_ratio)})")
    return ", ".join(parts) or "-"


COLUMNS = ("POOL", "SERVICE", "STORED", "MAX AVAIL", "FULL", "QUOTA", "IMAGES", "SNAPS",
           "CLONES", "TRASH", "WATCHED", "LOCKS", "STALE", "BACKUP SNAPS", "PGS")


def pool_row(p: PoolStatus) -> tuple[str, ...]:
    """The pool's line, cell by cell, as in COLUMNS (also the HTML report's table)."""
    unread = not p.read
    scan = p.sampled
    backups = "-"
    if "cinder-volume" in p.services and not unread:
        total = sum(n for _, n in p.backup_snapshots)
        backups = f"{total}" + (f" ({len(p.backup_pile_ups)} piling)" if p.backup_pile_ups
                                else "")
    return (
        printable(p.name), ",".join(p.services) or "-", human_bytes(p.stored),
        human_bytes(p.max_avail), _percent(p.fill_ratio), quota_cell(p),
        "-" if unread else _count(p.images), "-" if unread else _count(p.snapshots),
        _count(p.clones, p.clones_complete), "-" if unread else str(len(p.trash)),
        "-" if unread else _count(p.watched_images, not scan),
        "-" if unread else _count(len(p.locks), not scan),
        "-" if unread else _count(len(p.stale_locks), not scan), backups,
        pg_summary(p.pg_states))


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
            for r in rows]


def _health_line(status: Status) -> str:
    from cephstack.report.views import health_line

    # Health messages quote pool names: printable too.
    return printable(health_line(status.health)) if status.health \
        else "Cluster: health not observed"


def status_notes(status: Status, limit: int = 20) -> list[str]:
    """What needs a look, after the table: stale locks, piling backups, pools not read,
    sampling. Each line printable: it names pools, images, users and Ceph's errors."""
    return [printable(note) for note in _notes(status, limit)]


def _notes(status: Status, limit: int) -> list[str]:
    notes = []
    stale = [(p.name, lock) for p in status.pools for lock in p.stale_locks]
    for pool, lock in stale[:limit]:
        notes.append(f"Stale lock: {pool}/{lock.image} held by {lock.entity} at "
                     f"{lock.address}: {lock.why}")
    if len(stale) > limit:
        notes.append(f"... and {len(stale) - limit} more stale locks (--output json)")
    piles = [(p.name, v, n) for p in status.pools for v, n in p.backup_pile_ups]
    for pool, volume, n in piles[:limit]:
        notes.append(f"Backup snapshots piling up: {pool}/{volume} has {n} (set "
                     "backup_ceph_max_snapshots in cinder.conf)")
    if len(piles) > limit:
        notes.append(f"... and {len(piles) - limit} more volumes with piling backups")
    broken = [(p.name, image, error) for p in status.pools for image, error in p.unreadable]
    for pool, image, error in broken[:limit]:
        notes.append(f"Unreadable: {pool}/{image}: {error}")
    if len(broken) > limit:
        notes.append(f"... and {len(broken) - limit} more unreadable images")
    for p in status.pools:
        if (oldest := p.oldest_trash) is not None:
            notes.append(f"Trash: pool {p.name} holds {len(p.trash)} deleted image(s), the "
                         f"oldest ({oldest.name}) since {oldest.deleted_at}")
        if not p.read:
            notes.append(f"Not read: pool {p.name}: {p.note}")
        elif p.sampled:
            notes.append(f"Sampled: pool {p.name}: {p.scanned} of {p.images} images opened "
                         "for locks, watchers, backup snapshots and clones (--max-images); "
                         "counts marked >= are lower bounds")
    for name in status.missing_pools:
        notes.append(f"Missing: pool {name} is in the spec but not in the cluster "
                     "(cephstack apply creates it)")
    notes += key_notes(status.insecure_keys, status.auth_checks)
    return notes


def status_text(status: Status) -> str:
    lines = [_health_line(status)]
    cap = status.capacity
    if cap:
        lines.append(f"Capacity: {human_bytes(cap.get('total_bytes'))} raw, "
                     f"{human_bytes(cap.get('total_avail_bytes'))} available")
    lines.append("")
    if status.pools:
        lines += _table([COLUMNS, *(pool_row(p) for p in status.pools)])
    else:
        lines.append("No RBD pools.")
    notes = status_notes(status)
    if notes:
        lines += ["", *notes]
    lines += ["", f"Read in {status.seconds:.1f} s: {status.mon_commands} mon commands, "
                  f"{status.images_opened} images opened (at most {status.max_images})."]
    return "\n".join(lines)


def _ratio(x: float | None) -> float | None:
    return None if x is None else round(x, 6)


def pool_json(p: PoolStatus) -> dict[str, Any]:
    return {
        "name": p.name, "services": list(p.services),
        "stored_bytes": p.stored, "used_bytes": p.used, "objects": p.objects,
        "max_avail_bytes": p.max_avail, "fill_ratio": _ratio(p.fill_ratio),
        "quota": {"max_bytes": p.quota_bytes, "max_objects": p.quota_objects,
                  "bytes_ratio": _ratio(p.quota_bytes_ratio),
                  "objects_ratio": _ratio(p.quota_objects_ratio)},
        "pgs": {"total": p.pgs, "inactive": p.pgs_inactive, "by_state": p.pg_states},
        "read": p.read, "note": p.note or None,
        "images": p.images, "provisioned_bytes": p.provisioned_bytes,
        "snapshots": p.snapshots,
        "trash": {"entries": len(p.trash), "images": [vars(t) for t in p.trash],
                  "oldest_deleted_at": p.oldest_trash.deleted_at if p.oldest_trash else None},
        "scan": {"images_opened": p.scanned, "sampled": p.sampled},
        "clones": p.clones, "clones_complete": p.clones_complete,
        "images_with_clones": p.images_with_clones,
        "watched_images": p.watched_images,
        "watchers": [{"image": i, "address": a} for i, a in p.watched],
        "locks": [vars(lock) for lock in p.locks],
        "stale_locks": len(p.stale_locks),
        "backup_snapshots": [{"volume": v, "count": n} for v, n in p.backup_snapshots],
        "backup_pile_ups": len(p.backup_pile_ups),
        "unreadable_images": [{"image": i, "error": e} for i, e in p.unreadable],
    }


def status_json(status: Status) -> dict[str, Any]:
    from cephstack.report.views import _health_json

    return {
        "format_version": FORMAT_VERSION,
        "taken_at": status.taken_at, "seconds": round(status.seconds, 3),
        "reads": {"mon_commands": status.mon_commands, "images_opened": status.images_opened,
                  "max_images": status.max_images},
        "cluster": _health_json(status.health) if status.health else None,
        "capacity": status.capacity,
        "images_pool": status.images_pool,
        "blocklist_entries": status.blocklist_entries,
        "services": {k: {"user": e, "pools": list(pools)}
                     for k, (e, pools) in status.services.items()},
        "pools": [pool_json(p) for p in status.pools],
        "missing_pools": list(status.missing_pools),
        "insecure_keys": key_json(status.insecure_keys),
        "auth_checks": list(status.auth_checks),
        "notes": status_notes(status, limit=10**9),
    }


def fleet_text(found: FleetStatus) -> str:
    """One cluster: status_text. Several: a section each (a cluster not read shows its
    error) and a line across them."""
    if not found.named:
        return status_text(next(iter(found.statuses.values())))
    runs, statuses = found.fleet.runs, found.statuses
    lines: list[str] = []
    for name, run in runs.items():
        lines.append(f"== cluster {name} ({run.spec.cluster.conf}) ==")
        lines.append(status_text(statuses[name]) if name in statuses
                     else f"error: {name}: {printable_lines(error_text(run.error))}")
        lines.append("")
    lines.append(f"Across {len(runs)} clusters: " + "; ".join(
        f"{name}: {len(statuses[name].pools)} pool(s)" if name in statuses
        else f"{name}: FAILED" for name in runs) + ".")
    lines += [printable(line) for line in gap_lines(found.store_gaps)]
    lines += [printable(summary_line(c, p, images))
              for (c, p), images in sorted(found.mirrored.items())]
    return "\n".join(lines)


def fleet_json(found: FleetStatus) -> dict[str, Any]:
    """One cluster: status_json. Several: {"clusters": {name: <the one-cluster document> +
    "error"}, "failed": [...]}."""
    if not found.named:
        return status_json(next(iter(found.statuses.values())))
    statuses = found.statuses
    return {"format_version": FORMAT_VERSION,
            "clusters": {name: {**(status_json(statuses[name]) if name in statuses else {}),
                                "error": error_json(run.error) if run.error else None}
                         for name, run in found.fleet.runs.items()},
            "failed": [r.name for r in found.fleet.failed],
            "glance_stores": gaps_json(found.store_gaps),
            "mirrored": {f"{c}/{p}": mirrored_json(images)
                         for (c, p), images in sorted(found.mirrored.items())}}


def fleet_prometheus(found: FleetStatus) -> str:
    """One cluster: status_prometheus. Several: a cluster label on every sample."""
    if not found.named:
        return status_prometheus(next(iter(found.statuses.values())))
    return clusters_prometheus(dict(found.statuses), [r.name for r in found.fleet.failed])


# -- Prometheus ---------------------------------------------------------------------------

# name -> (help, value of a pool or None to leave the sample out)
POOL_METRICS: dict[str, tuple[str, Any]] = {
    "cephstack_pool_stored_bytes": (
        "Bytes stored in the pool (logical, before replication: what quotas count)",
        lambda p: p.stored),
    "cephstack_pool_used_bytes": ("Raw bytes used by the pool, all copies", lambda p: p.used),
    "cephstack_pool_objects": ("RADOS objects in the pool", lambda p: p.objects),
    "cephstack_pool_max_avail_bytes": (
        "Bytes that can still be written to the pool before an OSD reaches full_ratio "
        "(ceph df MAX AVAIL)", lambda p: p.max_avail),
    "cephstack_pool_quota_bytes": ("The pool's byte quota; 0 when none is set",
                                   lambda p: p.quota_bytes),
    "cephstack_pool_quota_objects": ("The pool's object quota; 0 when none is set",
                                     lambda p: p.quota_objects),
    "cephstack_pool_pgs": ("Placement groups of the pool", lambda p: p.pgs),
    "cephstack_pool_pgs_inactive": ("Placement groups of the pool that are not active",
                                    lambda p: p.pgs_inactive),
    "cephstack_pool_read": ("1 when the pool's RBD facts were read, 0 when skipped "
                            "(PGs not active)", lambda p: int(p.read)),
    "cephstack_pool_images": ("RBD images in the pool (its directory)",
                              lambda p: p.images),
    "cephstack_pool_snapshots": ("RBD snapshots of the pool's images", lambda p: p.snapshots),
    "cephstack_pool_clones": ("Images of the pool that are clones of a Glance image",
                              lambda p: p.clones),
    "cephstack_pool_trash_images": ("RBD images in the pool's trash",
                                    lambda p: len(p.trash) if p.read else None),
    "cephstack_pool_images_scanned": (
        "Images opened for locks, watchers and snapshot names (less than images: sampled)",
        lambda p: p.scanned if p.read else None),
    "cephstack_pool_watched_images": ("Scanned images some client has open (watchers)",
                                      lambda p: p.watched_images if p.read else None),
    "cephstack_pool_locks": ("Locks on scanned images", lambda p: len(p.locks) if p.read
                             else None),
    "cephstack_pool_stale_locks": (
        "Locks on scanned images whose holder is gone (blocklisted, or an exclusive lock "
        "whose holder no longer watches the image)",
        lambda p: len(p.stale_locks) if p.read else None),
    "cephstack_pool_backup_snapshot_pile_ups": (
        "Cinder volumes with several backup snapshots (backup_ceph_max_snapshots unset)",
        lambda p: len(p.backup_pile_ups) if p.read and "cinder-volume" in p.services
        else None),
}
STATUS_METRICS = {
    "cephstack_status_timestamp_seconds": "Unix time cephstack status read the cluster",
    "cephstack_status_duration_seconds": "Seconds cephstack status took to read",
    "cephstack_status_images_opened": "Images cephstack status opened in this run",
}


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n")


def _number(value: float) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


def status_prometheus(status: Status) -> str:
    """Text exposition format (version 0.0.4), for node_exporter's textfile collector."""
    return clusters_prometheus({None: status})


# Several clusters only: a cluster status could not read keeps a sample (0), so an alert
# sees it; the others' series would otherwise just end.
CLUSTER_READ_METRIC = ("cephstack_cluster_read",
                       "1 if cephstack status read this cluster in its last run, 0 if not")


def clusters_prometheus(statuses: dict[str | None, Status],
                        unread: Sequence[str] = ()) -> str:
    """The exposition of several clusters' statuses: each metric once, its samples of every
    cluster together, each with a cluster="<name>" label (none under the name None); with
    named clusters, cephstack_cluster_read 1 for each read and 0 for each of `unread`."""
    lines = []
    named = [c for c in statuses if c is not None] + list(unread)
    if named:
        name, text = CLUSTER_READ_METRIC
        lines += [f"# HELP {name} {text}", f"# TYPE {name} gauge"]
        lines += [f'{name}{{cluster="{_label(c)}"}} {0 if c in unread else 1}' for c in named]
    for name, value in (("cephstack_status_timestamp_seconds", lambda s: round(s.taken_at, 3)),
                        ("cephstack_status_duration_seconds", lambda s: round(s.seconds, 3)),
                        ("cephstack_status_images_opened", lambda s: s.images_opened)):
        lines += [f"# HELP {name} {STATUS_METRICS[name]}", f"# TYPE {name} gauge"]
        lines += [f"{name}{{cluster=\"{_label(c)}\"}} {_number(value(s))}" if c is not None
                  else f"{name} {_number(value(s))}" for c, s in statuses.items()]
    for name, (text, get) in POOL_METRICS.items():
        samples = []
        for cluster, status in statuses.items():
            where = "" if cluster is None else f'cluster="{_label(cluster)}",'
            for p in status.pools:
                value = get(p)
                if value is not None:
                    labels = (f'{where}pool="{_label(p.name)}",'
                              f'service="{_label(",".join(p.services))}"')
                    samples.append(f"{name}{{{labels}}} {_number(value)}")
        if samples:
            lines += [f"# HELP {name} {text}", f"# TYPE {name} gauge", *samples]
    return "\n".join(lines) + "\n"


def emitted_metrics() -> set[str]:
    """Every metric name status_prometheus may write (the alert rules may use only these)."""
    return set(POOL_METRICS) | set(STATUS_METRICS) | {CLUSTER_READ_METRIC[0]}


def dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, default=str)
