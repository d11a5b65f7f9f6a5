"""One opinion for plan and audit: what is wrong for OpenStack on RBD, judged by the same
code whether audit finds it on the cluster or plan foresees it from a spec (then a note,
before apply makes it). Pure."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cephstack.plan.state import ClusterState, PoolState, counted_osds
from cephstack.spec.caps import Caps, Grant, parse_grant
from cephstack.spec.load import Spec

ERROR, WARNING = "error", "warning"
HEALTHY_PGS_PER_OSD = 100  # Ceph's mon_target_pg_per_osd
# The mon profiles that grant `osd blocklist add` of one client instance (MonCap.cc: the
# rbd profiles; measured on Pacific: rbd-mirror-peer too), so a dead holder's exclusive lock
# can be broken. The mirroring users cephstack creates have the rbd-mirror ones.
BLOCKLISTING_PROFILES = ("rbd", "rbd-mirror", "rbd-mirror-peer")


@dataclass(frozen=True)
class Finding:
    id: str
    severity: str
    entity: str
    what: str
    breaks: str
    fix: str


# The fixes said in spec terms, for plan's notes.
SPEC_FIXES = {"pool-size-one": "size: 3 (and min_size: 2) in the spec",
              "pool-min-size-one": "min_size: 2 in the spec",
              "pg-num-not-power-of-two": "pg_num: a power of two",
              "pgs-per-osd-low": "raise pg_num, or autoscale: true",
              "shared-user": "one user per service in the spec"}


def covers(caps: Caps, daemon: str, grant: str | Grant) -> bool:
    wanted = parse_grant(grant) if isinstance(grant, str) else grant
    return any(g.covers(wanted) for g in caps.by_type().get(daemon, ()))


def pool_findings(name: str, size: int, min_size: int, pg_num: int,
                  osds_in: int) -> list[Finding]:
    """A pool's replicas and PG count."""
    found = []
    if osds_in > 1 and size == 1:  # a one-OSD cluster is a sandbox
        found.append(Finding("pool-size-one", ERROR, f"pool {name}", "size 1: one copy",
                             "losing one disk loses data", "size 3"))
    elif osds_in > 1 and min_size == 1:
        found.append(Finding("pool-min-size-one", WARNING, f"pool {name}",
                             "min_size 1: writes go on with a single copy",
                             "a second failure during recovery loses acknowledged writes",
                             "min_size 2"))
    if pg_num & (pg_num - 1):
        found.append(Finding("pg-num-not-power-of-two", WARNING, f"pool {name}",
                             f"pg_num {pg_num} is not a power of two",
                             "placement groups differ in size: data is unevenly spread",
                             "a power of two"))
    return found


def pgs_per_osd_findings(pools: Iterable[PoolState], state: ClusterState) -> list[Finding]:
    """The PG replicas per OSD in, over the limit or far below what spreads data well."""
    pools = list(pools)
    per_osd = sum(p.pg_num * p.size for p in pools) / counted_osds(state)
    if per_osd > state.max_pg_per_osd:
        return [Finding("pgs-per-osd-over-limit", ERROR, "cluster",
                        f"{per_osd:.0f} PGs per OSD, above mon_max_pg_per_osd "
                        f"{state.max_pg_per_osd}", "new pools and pg_num increases "
                        "are refused; peering is slow", "fewer PGs or more OSDs")]
    if pools and per_osd < HEALTHY_PGS_PER_OSD / 10:
        return [Finding("pgs-per-osd-low", WARNING, "cluster",
                        f"{per_osd:.0f} PGs per OSD, far below ~{HEALTHY_PGS_PER_OSD}",
                        "data is spread over few placement groups: uneven use of disks",
                        "raise pg_num or enable the autoscaler")]
    return []


def caps_findings(entity: str, caps: Caps) -> list[Finding]:
    """An RBD user's caps: blocklisting (evacuate) and pool restriction."""
    found = []
    if not any(covers(caps, "mon", f"profile {p}") for p in BLOCKLISTING_PROFILES):
        found.append(Finding(
            "mon-cannot-blocklist", ERROR, entity,
            f"mon caps '{caps.rendered().get('mon', '')}' cannot blocklist a client",
            "after a host crash the dead client's exclusive lock cannot be broken: "
            "nova evacuate and lock recovery hang", "mon 'profile rbd'"))
    if any(g.pool is None and g.namespace is None and g.kind == "allow" and
           ({"*"} & set(g.perms) or any("w" in p for p in g.perms))
           for g in caps.by_type().get("osd", ())):
        found.append(Finding(
            "osd-not-pool-restricted", ERROR, entity,
            f"osd caps '{caps.rendered()['osd']}' are not restricted to pools",
            "the service can read and overwrite every pool: a compromised or buggy "
            "service damages all data", "osd 'profile rbd pool=<its pools>'"))
    return found


def pools_in(caps: Caps) -> set[str]:
    return {g.pool for g in caps.by_type().get("osd", ()) if g.pool}


def touches_rbd(caps: Caps, pools: Iterable[str]) -> bool:
    """Caps that reach one of `pools` or grant an rbd profile: an RBD user's."""
    grants = [g for gs in caps.by_type().values() for g in gs]
    return bool(pools_in(caps) & set(pools)) or any("rbd" in " ".join(g.perms)
                                                    for g in grants)


def service_by_name(name: str) -> str | None:
    """The OpenStack service a user's name suggests."""
    n = name.removeprefix("client.").lower()
    if "glance" in n or n == "images":
        return "glance"
    if "backup" in n:
        return "cinder-backup"
    if "cinder" in n or "volume" in n:
        return "cinder-volume"
    if "nova" in n or "compute" in n:
        return "nova"
    return None


def shared_user_findings(services_by_user: Mapping[str, list[str]]) -> list[Finding]:
    return [Finding("shared-user", WARNING, entity, f"one user serves {', '.join(services)}",
                    "one leaked key exposes several services; caps cannot be "
                    "least-privilege", "one cephx user per service")
            for entity, services in sorted(services_by_user.items()) if len(services) > 1]


# -- plan: the same findings, foreseen from the spec ---------------------------------


def _default_min_size(state: ClusterState, size: int) -> int:
    found = state.settings.get("osd_pool_default_min_size")
    configured = int(found.value) if found and found.value.lstrip("-").isdigit() else 0
    return min(configured or size - size // 2, size)


def planned_pools(spec: Spec, state: ClusterState) -> dict[str, PoolState]:
    """Every pool as it will be after apply: the spec's as it sets them (the cluster's
    defaults for what it leaves out), the others as they are."""
    out = dict(state.pools)
    for name, want in spec.pools.items():
        have = state.pools.get(name)
        size = want.size or (have.size if have else state.default_pool_size)
        min_size = want.min_size or min(have.min_size if have else
                                        _default_min_size(state, size), size)
        pg = have.pg_num if have and want.autoscale else want.pg_num
        out[name] = PoolState(name, pg, size, min_size, "", "", 0.0, ("rbd",), 0, 0)
    return out


def foreseen(spec: Spec, state: ClusterState) -> list[str]:
    """Plan's notes: what audit will report once the spec is applied, caused by the spec
    (its pools, its users sharing, its explicit clients' caps)."""
    pools = planned_pools(spec, state)
    services_by_user: dict[str, list[str]] = {}
    for kind, service in spec.services.items():
        services_by_user.setdefault(f"client.{service.user}", []).append(kind)
    clients = {f"client.{n}": caps for n, c in spec.clients.items()
               if touches_rbd(caps := Caps.parse(c.caps), pools) or service_by_name(n)}
    found = [f for name in spec.pools for f in pool_findings(
        name, pools[name].size, pools[name].min_size, pools[name].pg_num, state.osds_in)]
    if any(name not in state.pools or (state.pools[name].pg_num, state.pools[name].size)
           != (pools[name].pg_num, pools[name].size) for name in spec.pools):
        # Only when the plan moves the PG count; over the limit: the PG budget refuses.
        found += [f for f in pgs_per_osd_findings(pools.values(), state)
                  if f.severity != ERROR]
    found += shared_user_findings(services_by_user)
    for entity, caps in sorted(clients.items()):
        found += caps_findings(entity, caps)
    osds = f", with {state.osds_in} OSDs in" if state.osds_in > 1 else ""
    return [f"{f.entity.replace('pool ', 'pool.', 1)}: audit will call this "
            f"{'an error' if f.severity == ERROR else 'a warning'} ({f.id}): {f.what}"
            f"{osds if f.id.startswith('pool-') else ''}; {f.breaks}; fix: "
            f"{SPEC_FIXES.get(f.id, f.fix)}" for f in found]
