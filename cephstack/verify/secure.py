"""Encrypted traffic, proven from Ceph's side (spec cluster ms_mode / require_secure).

Pacific shows no connection's msgr2 mode remotely (`sessions` carries no mode, there is no
messenger dump; only a daemon's own debug_ms log names it, e.g. `conn(... secure ...)`).
So the proof is what each daemon reports and what it accepts:
1. every monitor, manager and OSD runs with its service and cluster modes at `secure`
   (`config show DAEMON`: the running values each daemon reports to the manager);
2. each service's user connects with its rendered settings (ms_client_mode and
   ms_mon_client_mode secure) and does its I/O: the monitor lists its session and an OSD
   answers, which a cluster that accepts only secure does only over secure connections;
3. a client that allows only crc is refused: by the monitors (permission denied at
   connect) and, when it asks for secure to the monitors only, by the OSDs (no answer).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from cephstack.ceph.adapter import CephConnection
from cephstack.ceph.clusteraccess import ClusterAccess
from cephstack.errors import CephstackError
from cephstack.plan.secure import REQUIRED, SECURE
from cephstack.verify.drill import DrillFailed, DrillStep

SECURE_CLIENT = (("ms_client_mode", SECURE), ("ms_mon_client_mode", SECURE))
CRC_ONLY = (("ms_client_mode", "crc"), ("ms_mon_client_mode", "crc"))
CRC_TO_OSDS = (("ms_client_mode", "crc"), ("ms_mon_client_mode", SECURE))
# Daemons report their running configuration to the manager every few seconds
# (mgr_stats_period): a setting just made shows there after one report.
REPORT_WAIT = 15.0
REFUSAL_TIMEOUT = 5.0  # seconds a crc client is given before its refusal is taken


@dataclass(frozen=True)
class ServiceAccess:
    kind: str  # glance, cinder-volume...
    access: ClusterAccess  # its user, keyring and the cluster's conf
    pool: str  # a pool it may list


def daemons(admin: CephConnection) -> list[str]:
    mons = [f"mon.{m['name']}" for m in (admin.mon("mon dump") or {}).get("mons", [])]
    mgr = admin.mon("mgr dump") or {}
    mgrs = [f"mgr.{n}" for n in [mgr.get("active_name"), *(s.get("name") for s in
                                                          mgr.get("standbys", []))] if n]
    return mons + mgrs + [f"osd.{i}" for i in admin.mon("osd ls") or []]


def running_modes(admin: CephConnection, daemon: str) -> dict[str, str]:
    """The daemon's running ms_*_mode values not at Ceph's default (absent: default)."""
    shown = admin.mgr("config show", who=daemon) or []
    return {e["name"]: str(e["value"]) for e in shown if e.get("name") in REQUIRED}


def _session_of(admin: CephConnection, entity: str, address: str) -> str | None:
    """The monitor listing a session of `entity` from `address` (ip:port/nonce)."""
    nonce = address.rsplit("/", 1)[-1]
    for mon in (m["name"] for m in (admin.mon("mon dump") or {}).get("mons", [])):
        for s in admin.mon("sessions", target=mon) or []:
            vec = s.get("addrs", {}).get("addrvec", [])
            if s.get("entity_name") == entity and any(str(a.get("nonce")) == nonce
                                                      for a in vec):
                return f"mon.{mon}"
    return None


class _Checks:
    def __init__(self, admin: CephConnection) -> None:
        self.admin = admin
        self.steps: list[DrillStep] = []

    def step(self, name: str, run: Callable[[], str]) -> None:
        started = time.monotonic()
        try:
            detail, ok = run(), True
        except CephstackError as e:
            detail, ok = e.message, False
        self.steps.append(DrillStep(name, ok, time.monotonic() - started, detail))

    def required(self) -> str:
        deadline = time.monotonic() + REPORT_WAIT
        while True:
            found = {d: running_modes(self.admin, d) for d in daemons(self.admin)}
            lax = {d: sorted(n for n in REQUIRED if modes.get(n) != SECURE)
                   for d, modes in found.items()}
            lax = {d: names for d, names in lax.items() if names}
            if not lax or time.monotonic() > deadline:
                break
            time.sleep(1)
        if lax:
            raise DrillFailed("not every daemon requires secure mode: " + "; ".join(
                f"{d}: {', '.join(n)}" for d, n in sorted(lax.items())))
        return f"{len(found)} daemons ({', '.join(sorted(found))}) accept only secure"

    def service(self, s: ServiceAccess, required: bool) -> str:
        with CephConnection(replace(s.access, options=SECURE_CLIENT)) as conn:
            conn.rbd("list", s.pool)  # a monitor session and an OSD operation
            address = conn.client_address()
            mon = _session_of(self.admin, s.access.client, address)
            if mon is None:
                raise DrillFailed(f"no monitor lists a session of {s.access.client} "
                                  f"from {address}")
        return f"{s.access.client} at {address}: session on {mon}, OSD answered" + (
            ", over connections the cluster accepts only in secure mode" if required else
            "; asked for secure, but the cluster also accepts crc and Pacific does not say "
            "a connection's mode: set require_secure to prove it")

    def refused(self, s: ServiceAccess, options: tuple[tuple[str, str], ...],
                where: str) -> str:
        access = replace(s.access, options=options, connect_timeout=REFUSAL_TIMEOUT,
                         op_timeout=REFUSAL_TIMEOUT)
        try:
            with CephConnection(access) as conn:
                conn.rbd("list", s.pool)
        except CephstackError as e:
            return f"refused by the {where}: {e.message}"
        raise DrillFailed(f"a crc-only client was accepted by the {where}")


def secure_checks(admin: CephConnection, services: list[ServiceAccess],
                  required: bool) -> list[DrillStep]:
    """The steps above; without `required` only each service's own connection (Ceph does
    not say its mode remotely: the step says so)."""
    checks = _Checks(admin)
    if required:
        checks.step("cluster requires secure", checks.required)
    for s in services:
        checks.step(f"{s.kind}: secure connection",
                    lambda s=s: checks.service(s, required))
    if required and services:
        s = services[0]
        checks.step("crc client refused by the monitors",
                    lambda: checks.refused(s, CRC_ONLY, "monitors"))
        checks.step("crc client refused by the OSDs",
                    lambda: checks.refused(s, CRC_TO_OSDS, "OSDs"))
    return checks.steps
