"""Text and JSON views of fence, unfence and locks (cephstack.day2.fence builds what they
show): one cluster's view, and the several-cluster one, a section per cluster holding that
cluster's view or its error. Names other tools gave (pools, images, lock cookies) go to
the terminal escaped (cephstack.text.printable): no raw control character. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cephstack import FORMAT_VERSION
from cephstack.day2.fence import (
    FencePlan,
    FenceResult,
    HeldImage,
    UnfenceItem,
    human_duration,
)
from cephstack.day2.fencing import Fenced
from cephstack.day2.status import STALE, LockStatus, Status
from cephstack.errors import EXIT_FAILED, error_json, error_text
from cephstack.session.fleet import ClusterRun, Fleet
from cephstack.text import printable, printable_lines


def _text(lines: list[str]) -> str:
    """The lines as terminal text: each escaped (no line of a view holds a newline)."""
    return "\n".join(printable(line) for line in lines)


def _expiry(expire: float | None) -> str:
    if expire is None:
        return "expiring after Ceph's default, mon_osd_blocklist_default_expire: 1 h unless set"
    return f"expiring after {human_duration(expire)}"


def _lock_line(lock: LockStatus) -> str:
    state = "STALE" if lock.state == STALE else lock.state
    return f"lock of {lock.entity} (cookie {lock.cookie!r}): {state}, {lock.why}"


def _scanned_lines(plan: FencePlan) -> list[str]:
    lines = []
    pools = ", ".join(f"{s.pool} {s.opened}/{s.images}" if s.images is not None
                      else f"{s.pool} not read ({s.note})" for s in plan.scanned)
    lines.append(f"Scanned: {plan.images_opened} image(s) opened (at most {plan.max_images}): "
                 f"{pools or 'no OpenStack pool'}.")
    partial = [s for s in plan.scanned if not s.complete]
    if partial:
        lines.append(
            "Not every image was checked (" + ", ".join(
                f"{s.pool}: {s.opened} of {s.images}" if s.images is not None
                else f"{s.pool}: none" for s in partial)
            + "): the blocklist still cuts off every client of the address, and librbd on "
            "the new host breaks the locks it finds on images not listed here (raise "
            "--max-images to list and free them all).")
    return lines


def fence_text(plan: FencePlan, result: FenceResult | None = None) -> str:
    lines: list[str] = []
    for target in plan.targets:
        covered = plan.covered.get(target.text)
        state = ""
        if covered == target.address:
            state = f" (already blocklisted until {plan.blocklisted.get(target.address, '?')})"
        elif covered:
            state = f" (already cut off by blocklist entry {covered})"
        lines.append(f"Fence {target.describe()}{state}")
        hits = [h for h in plan.hits if h.target == target.text]
        if not hits:
            lines.append("  no image of the scanned pools is watched or locked by it")
        for hit in hits:
            lines.append(f"  {hit.label}")
            for w in hit.watchers:
                lines.append(f"      watched by {w}")
            for lock in hit.locks:
                lines.append(f"      {_lock_line(lock)}"
                             + (" (before the fence)" if result is not None else ""))
    lines.append("")
    lines += _scanned_lines(plan)
    lines += [f"Fenced anyway (--force): {why}" for why in plan.forced]
    live = [lk for _, lk in plan.locks if lk.state == "live"]
    if result is None:
        lines.append("")
        if live:
            lines.append(f"Caution: {len(live)} lock holder(s) above still watch their image: "
                         "fence only a host that is down or cut off from the cloud; a fenced "
                         "client that lives on gets errors on every write (EBLOCKLISTED).")
        lines.append(f"Dry run: nothing changed. With --yes: blocklist "
                     f"{', '.join(t.address for t in plan.targets)} ({_expiry(plan.expire)}), "
                     f"then break {len(plan.locks)} lock(s).")
        return _text(lines)
    lines.append("")
    for entry, until in result.blocklisted.items():
        lines.append(f"Blocklisted {entry} until {until or '?'}")
    for o in result.locks:
        what = next((h.label for h in plan.hits if (h.pool, h.image) == (o.pool, o.image)),
                    f"{o.pool}/{o.image}")
        if o.freed:
            lines.append(f"Freed {what}: lock of {o.entity} at {o.address} broken")
        else:
            lines.append(f"Not freed {what}: lock of {o.entity}: {o.note}")
    for pool, image, addr in result.still_watching:
        lines.append(f"Still watched: {pool}/{image} by {addr} (the OSDs drop a blocklisted "
                     "client's watch once they have the new OSD map)")
    freed = len({(o.pool, o.image) for o in result.locks if o.freed})
    lines.append(f"Fenced {len(result.blocklisted)} address(es); freed {freed} image(s)"
                 + (f"; {len(result.failed)} lock(s) could not be broken" if result.failed
                    else "") + ". `cephstack unfence` lifts the blocklist once the host's old "
                 "clients are gone.")
    return _text(lines)


def _lock_json(lock: LockStatus) -> dict[str, Any]:
    return {"entity": lock.entity, "cookie": lock.cookie, "address": lock.address,
            "exclusive": lock.exclusive, "state": lock.state, "why": lock.why}


def fence_json(plan: FencePlan, result: FenceResult | None = None) -> dict[str, Any]:
    outcomes = {(o.pool, o.image, o.entity, o.cookie): o for o in (result.locks if result
                                                                  else [])}
    images = []
    for h in plan.hits:
        locks = []
        for lk in h.locks:
            o = outcomes.get((h.pool, h.image, lk.entity, lk.cookie))
            locks.append({**_lock_json(lk), **({"freed": o.freed, "note": o.note} if o
                                               else {})})
        images.append({"pool": h.pool, "image": h.image, "openstack": h.openstack or None,
                       "services": list(h.services), "target": h.target,
                       "watchers": list(h.watchers), "locks": locks})
    return {
        "format_version": FORMAT_VERSION,
        "dry_run": result is None,
        "expire_seconds": plan.expire,
        "targets": [{"target": t.text, "kind": t.kind, "blocklist_entry": t.address,
                     "cut_off_before_by": plan.covered.get(t.text) or None,
                     "blocklisted_until": (result.blocklisted.get(t.address) if result
                                           else plan.blocklisted.get(t.address))}
                    for t in plan.targets],
        "images": images,
        "scanned": {"images_opened": plan.images_opened, "max_images": plan.max_images,
                    "pools": [{"pool": s.pool, "images": s.images, "opened": s.opened,
                               "complete": s.complete, "note": s.note or None}
                              for s in plan.scanned]},
        **({"freed": sorted({f"{o.pool}/{o.image}" for o in result.locks if o.freed}),
            "not_freed": [{"pool": o.pool, "image": o.image, "entity": o.entity,
                           "note": o.note} for o in result.locks if not o.freed],
            "still_watching": [{"pool": p, "image": i, "address": a}
                               for p, i, a in result.still_watching]} if result else {}),
        **({"forced": list(plan.forced)} if plan.forced else {}),
    }


def unfence_text(items: tuple[UnfenceItem, ...], done: bool) -> str:
    lines = []
    for item in items:
        t = item.target
        if item.until is None:
            lines.append(f"{t.text}: not in the blocklist (entry {t.address}); nothing to do")
        elif done:
            lines.append(f"Removed blocklist entry {t.address} (was until {item.until})")
        else:
            lines.append(f"Would remove blocklist entry {t.address} (until {item.until})")
        if item.still_cut_off_by:
            lines.append(f"  still cut off by {item.still_cut_off_by}: unfence that too to let "
                         "it back")
        if item.instance_entries:
            lines.append(f"  left in place: {len(item.instance_entries)} entr(ies) for single "
                         f"clients of {t.ip} ({', '.join(item.instance_entries)}): clients cut "
                         "off one by one (by fence, or by librbd taking over their locks) stay "
                         "cut off; unfence each by its IP:PORT/NONCE if it must write again")
    pending = [i for i in items if i.until is not None]
    if not done:
        lines.append(f"Dry run: nothing changed. With --yes: remove {len(pending)} blocklist "
                     "entr(ies). Only once the host's old clients are gone (rebooted): a "
                     "client cut off while it ran would write again.")
    else:
        lines.append(f"Unfenced: removed {len(pending)} blocklist entr(ies).")
    return _text(lines)


def unfence_json(items: tuple[UnfenceItem, ...], done: bool) -> dict[str, Any]:
    return {"format_version": FORMAT_VERSION, "dry_run": not done,
            "targets": [{"target": i.target.text, "kind": i.target.kind,
                         "blocklist_entry": i.target.address, "until": i.until,
                         "removed": done and i.until is not None,
                         "still_cut_off_by": i.still_cut_off_by or None,
                         "instance_entries_left": list(i.instance_entries)}
                        for i in items]}


def locks_text(held: tuple[HeldImage, ...], status: Status) -> str:
    lines = []
    for h in held:
        lines.append(f"{h.pool}/{h.image}" + (f"  {h.openstack}" if h.openstack else ""))
        for lk in h.locks:
            lines.append(f"  lock   {lk.entity} at {lk.address}: "
                         f"{'STALE' if lk.state == STALE else lk.state} ({lk.why})")
        for w, fenced in h.watchers:
            lines.append(f"  watch  {w}" + ("  (blocklisted)" if fenced else ""))
        if not h.locks:
            lines.append("  no lock")
    stale = sum(lk.state == STALE for h in held for lk in h.locks)
    if not held:
        lines.append("No image of the scanned pools is locked or watched.")
    lines.append("")
    partial = [p for p in status.pools if p.read and p.sampled]
    lines.append(f"{len(held)} image(s) locked or watched, {stale} stale lock(s); "
                 f"{status.images_opened} image(s) opened (at most {status.max_images})"
                 + ("; sampled: " + ", ".join(f"{p.name} {p.scanned} of {p.images}"
                                               for p in partial) if partial else "")
                 + "".join(f"; {p.name} not read ({p.note})" for p in status.pools
                           if not p.read) + ".")
    if stale:
        lines.append("A stale lock's holder is gone: librbd breaks it when another client "
                     "opens the image; `cephstack fence ADDR --yes` frees it now.")
    return _text(lines)


def locks_json(held: tuple[HeldImage, ...], status: Status) -> dict[str, Any]:
    return {"format_version": FORMAT_VERSION,
            "images": [{"pool": h.pool, "image": h.image, "openstack": h.openstack or None,
                        "locks": [_lock_json(lk) for lk in h.locks],
                        "watchers": [{"address": w, "blocklisted": b} for w, b in h.watchers]}
                       for h in held],
            "scanned": {"images_opened": status.images_opened,
                        "max_images": status.max_images,
                        "pools": [{"pool": p.name, "images": p.images if p.read else None,
                                   "opened": p.scanned, "note": p.note or None}
                                  for p in status.pools]}}


# -- several clusters: a section each ---------------------------------------------------------

@dataclass(frozen=True)
class ClusterPart:
    """One cluster's part of the output: its one-cluster text and JSON document, or the
    error that stopped it there."""

    name: str
    conf: str
    text: str = ""
    document: dict[str, Any] | None = None
    summary: str = ""  # a few words for the closing line
    error: Exception | None = None
    exit_code: int = 0  # non-zero without an error: e.g. a lock that could not be broken

    @property
    def code(self) -> int:
        if self.error is not None:
            return int(getattr(self.error, "exit_code", EXIT_FAILED))
        return self.exit_code


def combined_exit_code(codes: list[int]) -> int:
    """As plan and apply across clusters: 0 if every cluster did its part, the failed
    clusters' code when they share one (3: unreachable), else 1."""
    failed = {c for c in codes if c}
    if not failed:
        return 0
    return failed.pop() if len(failed) == 1 else EXIT_FAILED


def clusters_text(parts: list[ClusterPart]) -> str:
    """A section per cluster: its one-cluster view, or its error; a closing line."""
    lines: list[str] = []
    for part in parts:
        lines.append(f"== cluster {part.name} ({part.conf}) ==")
        lines.append(f"error: {part.name}: {printable_lines(error_text(part.error))}"
                     if part.error else part.text)
        lines.append("")
    lines.append(f"Across {len(parts)} cluster(s): " + "; ".join(
        f"{p.name}: {'FAILED' if p.error else p.summary}" for p in parts) + ".")
    return "\n".join(lines)


def clusters_json(parts: list[ClusterPart], **top: Any) -> dict[str, Any]:
    """{"clusters": {name: <the one-cluster document> + "error"}, "failed": [...]}."""
    return {"format_version": FORMAT_VERSION, **top,
            "clusters": {p.name: {**(p.document or {}),
                                  "error": error_json(p.error) if p.error else None}
                         for p in parts},
            "failed": [p.name for p in parts if p.error]}


def fence_summary(plan: FencePlan, result: FenceResult | None) -> str:
    if result is None:
        return (f"would blocklist {len(plan.targets)} address(es), break "
                f"{len(plan.locks)} lock(s)")
    freed = len({(o.pool, o.image) for o in result.locks if o.freed})
    return (f"fenced {len(result.blocklisted)} address(es), freed {freed} image(s)"
            + (f", {len(result.failed)} lock(s) not broken" if result.failed else ""))


def unfence_summary(items: tuple[UnfenceItem, ...], done: bool) -> str:
    pending = sum(i.until is not None for i in items)
    return f"{'removed' if done else 'would remove'} {pending} blocklist entr(ies)"


def locks_summary(held: tuple, stale: int) -> str:
    return f"{len(held)} image(s) locked or watched, {stale} stale lock(s)"


def _part(run: ClusterRun, **found: Any) -> ClusterPart:
    return ClusterPart(run.name, run.spec.cluster.conf if run.spec is not None else "",
                       error=run.error, **found)


def fence_parts(runs: Fleet, found: Fenced, act: bool) -> list[ClusterPart]:
    parts = []
    for run in runs.runs.values():
        plan, result = found.plans.get(run.name), found.results.get(run.name)
        if plan is None or (act and result is None):
            parts.append(_part(run))
            continue
        parts.append(_part(run, text=fence_text(plan, result),
                           document=fence_json(plan, result),
                           summary=fence_summary(plan, result),
                           exit_code=EXIT_FAILED if result is not None and result.failed
                           else 0))
    return parts


def unfence_parts(runs: Fleet, items: dict[str, tuple[UnfenceItem, ...]], done: bool
                  ) -> list[ClusterPart]:
    return [_part(run, text=unfence_text(items[run.name], done),
                  document=unfence_json(items[run.name], done),
                  summary=unfence_summary(items[run.name], done))
            if run.ok else _part(run) for run in runs.runs.values()]


def locks_parts(runs: Fleet, found: dict[str, tuple[tuple[HeldImage, ...], Status]]
                ) -> list[ClusterPart]:
    parts = []
    for run in runs.runs.values():
        if not run.ok:
            parts.append(_part(run))
            continue
        held, status = found[run.name]
        stale = sum(lk.state == STALE for h in held for lk in h.locks)
        parts.append(_part(run, text=locks_text(held, status),
                           document=locks_json(held, status),
                           summary=locks_summary(held, stale)))
    return parts
