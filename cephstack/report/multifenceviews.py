"""Text and JSON of fence, unfence and locks across clusters (cephstack/day2/multifence.py runs
them): one section per cluster holding the one-cluster view (fenceviews), or that
cluster's error. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cephstack.commands.multicommands import error_json, error_text  # as plan and audit show them
from cephstack.day2.fence import FORMAT_VERSION, FencePlan, FenceResult, UnfenceItem
from cephstack.errors import EXIT_FAILED


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
    lines: list[str] = []
    for part in parts:
        lines.append(f"== cluster {part.name} ({part.conf}) ==")
        lines.append(f"error: {part.name}: {error_text(part.error)}" if part.error
                     else part.text)
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
