"""What `cephstack fence` refuses to cut off (issue 18), before any change: the
unspecified, multicast and broadcast addresses (never, whatever --force says), and the
Ceph daemons' own addresses (unless --force). A blocklist entry for a monitor's,
manager's, OSD's, MDS's, RGW's or rbd-mirror daemon's address, or for the host one runs
on, cuts that daemon's own clients off the OSDs (the manager's modules, a gateway, a
mirror daemon) instead of a dead OpenStack client. Pure: cephstack.day2.fencing reads the
maps (`mon dump`, `mgr dump`, `osd dump`, `fs dump`, `service dump`) and hands their JSON
here.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from cephstack.day2.fence import HOST, Target, split_address

# The mon commands whose JSON daemon_addresses reads, in its argument order.
MAPS = ("mon dump", "mgr dump", "osd dump", "fs dump", "service dump")
_OSD_ADDRS = ("public_addrs", "cluster_addrs", "heartbeat_back_addrs", "heartbeat_front_addrs")
_SHOWN = 4  # daemons named in a refusal; the rest counted


def never_fenced(target: Target) -> str:
    """Why the target is refused whatever --force says ("" when it may be fenced): the
    unspecified address (0.0.0.0, ::) is no host, and a multicast or broadcast address
    is many."""
    ip = ipaddress.ip_address(target.ip)
    mapped = getattr(ip, "ipv4_mapped", None) or ip
    if ip.is_unspecified or mapped.is_unspecified:
        return (f"{target.text} is the unspecified address, not a host: fence takes the "
                "address the dead host's Ceph clients use (see `cephstack locks`); "
                "--force does not change this")
    if mapped.is_multicast or str(mapped) == "255.255.255.255":
        return (f"{target.text} is a multicast or broadcast address, not one host; "
                "--force does not change this")
    return ""


@dataclass(frozen=True)
class DaemonAddress:
    daemon: str  # mon.a, mgr.x, osd.0, mds.a, rgw.gw1, rbd-mirror.site-a
    address: str  # IP:PORT/NONCE, normalised as blocklist entries are written
    ip: str
    port: int
    nonce: int


def _one(daemon: str, text: str) -> DaemonAddress | None:
    parts = split_address(text)
    if parts is None:
        return None  # "(unrecognized address family 0)/0": a daemon not reporting one
    ip, port, nonce = parts
    shown = f"[{ip}]" if ":" in ip else ip
    return DaemonAddress(daemon, f"{shown}:{port}/{nonce}", ip, port, nonce)


def _addrvec(daemon: str, addrs: Any, single: Any = None) -> list[DaemonAddress]:
    """Each address of an addrvec ({"addrvec": [{"type", "addr", "nonce"}]}), or the
    single legacy `addr` string when there is none."""
    found = []
    vec = addrs.get("addrvec") if isinstance(addrs, dict) else None
    for a in vec if isinstance(vec, list) else []:
        if isinstance(a, dict) and a.get("addr"):
            found.append(_one(daemon, f"{a['addr']}/{a.get('nonce', 0)}"))
    if not vec and isinstance(single, str):
        found.append(_one(daemon, single))
    return [d for d in found if d is not None]


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def daemon_addresses(mons: Any, mgrs: Any, osds: Any, fs: Any, services: Any
                     ) -> tuple[DaemonAddress, ...]:
    """Every address a daemon of the cluster uses, from the JSON of MAPS (each may be
    None or partial: what is missing names no daemon)."""
    out: list[DaemonAddress] = []
    for m in _list(_dict(mons).get("mons")):
        out += _addrvec(f"mon.{_dict(m).get('name', '?')}", _dict(m).get("public_addrs"),
                        _dict(m).get("addr"))
    mgr = _dict(mgrs)
    if mgr.get("active_name") or mgr.get("active_addrs"):
        name = f"mgr.{mgr.get('active_name') or '?'}"
        out += _addrvec(name, mgr.get("active_addrs"), mgr.get("active_addr"))
        for client in _list(mgr.get("active_clients")):  # its modules' librados clients
            module = _dict(client).get("name")
            out += _addrvec(f"{name} (its {module} module)" if module
                            else f"{name} (a client of its modules)", client)
    for o in _list(_dict(osds).get("osds")):
        for key in _OSD_ADDRS:
            out += _addrvec(f"osd.{_dict(o).get('osd', '?')}", _dict(o).get(key))
    fsmap = _dict(fs)
    mds = [*_list(fsmap.get("standbys"))]
    for f in _list(fsmap.get("filesystems")):
        mds += list(_dict(_dict(_dict(f).get("mdsmap")).get("info")).values())
    for d in mds:
        out += _addrvec(f"mds.{_dict(d).get('name', '?')}", _dict(d).get("addrs"),
                        _dict(d).get("addr"))
    for service, entry in _dict(_dict(services).get("services")).items():
        if service in ("mon", "mgr", "osd", "mds"):
            continue  # from their own maps above
        for key, d in _dict(_dict(entry).get("daemons")).items():
            if isinstance(d, dict) and isinstance(d.get("addr"), str):
                name = _dict(d.get("metadata")).get("id") or key
                if (found := _one(f"{service}.{name}", d["addr"])) is not None:
                    out.append(found)
    return tuple(dict.fromkeys(out))


def _hits(target: Target, daemon: DaemonAddress) -> bool:
    """Whether blocklisting the target cuts the daemon off: its host, the very address,
    or another address of the same process (the same IP and nonce)."""
    if ipaddress.ip_address(target.ip) != ipaddress.ip_address(daemon.ip):
        return False
    return (target.kind == HOST or (target.port, target.nonce) == (daemon.port, daemon.nonce)
            or (target.nonce != 0 and target.nonce == daemon.nonce))


def daemon_conflicts(targets: tuple[Target, ...], daemons: tuple[DaemonAddress, ...]
                     ) -> tuple[str, ...]:
    """Why each target that reaches a daemon of the cluster must not be fenced (one
    reason per target, naming the daemons), in the targets' order."""
    reasons = []
    for t in targets:
        hit = [d for d in daemons if _hits(t, d)]
        if not hit:
            continue
        names = list(dict.fromkeys(d.daemon for d in hit))
        shown = ", ".join(names[:_SHOWN]) + (f" and {len(names) - _SHOWN} more"
                                             if len(names) > _SHOWN else "")
        if t.kind == HOST:
            reasons.append(f"host {t.ip} runs Ceph daemons of the cluster ({shown}): its "
                           "blocklist entry would cut their own clients off")
        else:
            reasons.append(f"{t.text} is an address of {shown} ({hit[0].address}), a Ceph "
                           "daemon of the cluster, not an OpenStack client")
    return tuple(reasons)
