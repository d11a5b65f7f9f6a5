"""The settings plan decisions depend on, as the monitors run with them.

A monitor's running value may come from its ceph.conf, from `ceph tell mon.* config set`,
from the config database or from Ceph's compiled default; `config dump` shows only the
database. So each monitor in quorum is asked its own `config diff` (one command each, a
few KB: every option not at its default, by layer), and the leader's answer is used (it
creates the pools: the lowest rank in quorum, as `status` lists them first). When no
monitor answers (a client without the caps), the config database, then the compiled
default, with the source saying so.
"""

from __future__ import annotations

from collections.abc import Mapping

from cephstack.ceph.adapter import CephConnection
from cephstack.errors import CephstackError
from cephstack.plan.state import (
    DEFAULT_MAX_PG_PER_OSD,
    DEFAULT_MAX_POOL_PG_NUM,
    DEFAULT_POOL_SIZE,
    SOURCE_DATABASE,
    SOURCE_DEFAULT,
    SOURCE_FILE,
    SOURCE_OVERRIDE,
    Setting,
)

# Name -> Ceph's compiled default (as text, the way the monitors give values).
DEFAULTS = {
    "osd_pool_default_size": str(DEFAULT_POOL_SIZE),
    "osd_pool_default_min_size": "0",  # 0: size - size/2
    "mon_max_pg_per_osd": str(DEFAULT_MAX_PG_PER_OSD),
    "mon_max_pool_pg_num": str(DEFAULT_MAX_POOL_PG_NUM),
    "osd_pool_default_crush_rule": "-1",  # -1: the replicated rule with the lowest id
    "mon_allow_pool_delete": "false",
}
# `config diff` layers, highest first (ConfigValues: override > cmdline > env > file > mon).
_LAYERS = (("override", SOURCE_OVERRIDE), ("cmdline", SOURCE_FILE), ("env", SOURCE_FILE),
           ("file", SOURCE_FILE), ("mon", SOURCE_DATABASE))


def _text(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def from_diff(diff: object, name: str) -> Setting | None:
    """One setting from a monitor's `config diff` ({"diff": {name: {layer: value, ...,
    "final": value}}}); absent: the compiled default. None: not a diff."""
    layers = diff.get("diff") if isinstance(diff, dict) else None
    if not isinstance(layers, dict):
        return None
    entry = layers.get(name)
    if not isinstance(entry, dict):
        return Setting(DEFAULTS[name], SOURCE_DEFAULT)
    source = next((label for layer, label in _LAYERS if layer in entry), SOURCE_DEFAULT)
    value = entry.get("final", entry.get(next((k for k, _ in _LAYERS if k in entry), ""),
                                         DEFAULTS[name]))
    return Setting(_text(value), source)


def from_database(config: list[dict], name: str) -> Setting:
    """From `config dump` (the mon section over global), else the compiled default."""
    for section in ("mon", "global"):
        for entry in config:
            if entry.get("name") == name and entry.get("section") == section \
                    and "value" in entry:
                return Setting(_text(entry["value"]), SOURCE_DATABASE)
    return Setting(DEFAULTS[name], SOURCE_DEFAULT)


def monitors_of(status: object) -> list[str]:
    """The monitors in quorum, by rank (the leader first), from `status`."""
    names = status.get("quorum_names", []) if isinstance(status, dict) else []
    return [str(n) for n in names]


def settings_of(diffs: Mapping[str, object], config: list[dict]) -> dict[str, Setting]:
    """Every setting in DEFAULTS: the leader's running value (the first monitor of
    `diffs`, else the next that answered), else the config database's, else the default.
    Monitors that disagree are named in Setting.monitors."""
    order = [m for m, d in diffs.items() if from_diff(d, "mon_max_pg_per_osd")]
    out = {}
    for name in DEFAULTS:
        if not order:
            out[name] = from_database(config, name)
            continue
        per_mon = {m: from_diff(diffs[m], name) for m in order}
        chosen = per_mon[order[0]]
        assert chosen is not None
        others = sorted({f"mon.{m} {s.value}" for m, s in per_mon.items()
                         if s is not None and s.value != chosen.value})
        mons = f"mon.{order[0]}" + (f" (used; others differ: {', '.join(others)})"
                                    if others else "")
        out[name] = Setting(chosen.value, chosen.source, mons)
    return out


def read_diffs(conn: CephConnection, monitors: list[str]) -> dict[str, object]:
    """Each monitor's own `config diff`, at once; a monitor that does not answer (a client
    without the caps, a monitor going down) is left out."""
    def ask(mon: str) -> object:
        try:
            return conn.mon("config diff", target=mon)
        except CephstackError:
            return None
    found = conn.concurrently([lambda m=m: ask(m) for m in monitors])
    return {m: d for m, d in zip(monitors, found, strict=True) if d is not None}


def as_int(settings: Mapping[str, Setting], name: str) -> int:
    try:
        return int(settings[name].value)
    except (KeyError, ValueError):
        return int(DEFAULTS[name])
