"""The spec's trash and msgr2 settings (issue 20), read into the model's fields.

- `pools: NAME: {trash_purge: 1d}`: the manager's `rbd trash purge schedule` on the pool
  ("off": none). Default: plan/trash.py.
- `services: cinder-volume: {trash: {deferred_deletion, delay, purge_interval}}`: Cinder's
  own deferred deletion, rendered into each backend of cinder.conf.
- `cluster: {ms_mode: secure, require_secure: true}` (or a clusters: entry): the msgr2 mode
  of every client's connections (rendered into each host's ceph.conf) and, with
  require_secure, the cluster refusing any other (applied on the monitors).
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from cephstack.spec.model import CinderTrash
from cephstack.spec.read import Reader, show

TRASH_OFF = "off"
MS_MODES = ("crc", "secure")
_INTERVAL = re.compile(r"[1-9][0-9]{0,5}[dhm]")  # the manager's intervals: 30m, 1h, 1d
_TRASH_KEYS = ("deferred_deletion", "delay", "purge_interval")


def read_pool_trash(r: Reader, m: dict, where: str) -> dict[str, Any]:
    if "trash_purge" not in m:
        return {}
    node = m["trash_purge"][1]
    v = r.value(node, f"{where}.trash_purge", (str, bool), "an interval like 1d, or off")
    if v is False or v == TRASH_OFF:
        return {"trash_purge": TRASH_OFF}
    if isinstance(v, str) and _INTERVAL.fullmatch(v.strip()):
        return {"trash_purge": v.strip()}
    if v is not None:
        r.problem(node, f"{where}.trash_purge", f"expected an interval like 30m, 6h or 1d "
                  f"(minutes, hours or days), or off; got {show(v)}")
    return {}


def read_cinder_trash(r: Reader, node: yaml.Node, where: str) -> dict[str, Any]:
    where = f"{where}.trash"
    m = r.mapping(node, where, _TRASH_KEYS)
    out: dict[str, Any] = {}
    if "deferred_deletion" in m:
        v = r.value(m["deferred_deletion"][1], f"{where}.deferred_deletion", (bool,),
                    "true or false")
        if v is not None:
            out["deferred_deletion"] = v
    for key, low, high in (("delay", 0, 365 * 86400), ("purge_interval", 1, 86400)):
        if key in m:
            v = r.value(m[key][1], f"{where}.{key}", (int,), "seconds")
            if v is not None and not low <= v <= high:
                r.problem(m[key][1], f"{where}.{key}", f"must be {low}..{high} seconds, got {v}")
            elif v is not None:
                out[key] = v
    return {"trash": CinderTrash(**out)}


def read_ms(r: Reader, m: dict, where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "ms_mode" in m:
        v = r.value(m["ms_mode"][1], f"{where}.ms_mode", (str,), "crc or secure")
        if v is not None and v not in MS_MODES:
            r.problem(m["ms_mode"][1], f"{where}.ms_mode", f"expected crc or secure (msgr2 "
                      f"modes), got {show(v)}")
        elif v is not None:
            out["ms_mode"] = v
    if "require_secure" in m:
        v = r.value(m["require_secure"][1], f"{where}.require_secure", (bool,), "true or false")
        if v and out.get("ms_mode") != "secure":
            r.problem(m["require_secure"][1], f"{where}.require_secure", "needs ms_mode: "
                      "secure (the clients would be refused)")
        elif v is not None:
            out["require_secure"] = v
    return out
