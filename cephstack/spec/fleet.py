"""A spec with `clusters:` as one ordinary Spec per cluster, so the one-cluster observe, plan
and apply run unchanged on each (pure: no cluster, no files).

Each cluster's Spec holds its pools (a mirrored pool also on the secondary, same name and
settings: Cinder fails over to the same pool name), the services with a pool there (their
caps then compile from that cluster's view: Cinder on edge1 reads edge1's Glance pool), the
clients: section, the rbd-mirror user on both sides of a mirroring pair, and keyring files
named <cluster>.<entity>.keyring so two clusters' keys never share a file.
"""

from __future__ import annotations

from dataclasses import replace

from cephstack.spec.catalog import MIRROR_USER_CAPS
from cephstack.spec.model import ClientSpec, PoolSpec, ServiceSpec, Spec


def is_multi(spec: Spec) -> bool:
    return bool(spec.clusters)


def mirror_caps() -> dict[str, str]:
    """The rbd-mirror daemon's caps."""
    return dict(MIRROR_USER_CAPS)


def cluster_pools(spec: Spec, name: str) -> dict[str, PoolSpec]:
    """The pools on cluster `name`, with the mirrored ones on the secondary."""
    pools = {n: p for n, p in spec.pools.items() if p.cluster == name}
    m = spec.mirroring
    if m and name == m.secondary:
        pools.update({n: replace(spec.pools[n], cluster=name) for n in m.pools})
    return pools


def _service_here(service: ServiceSpec, pools: dict[str, PoolSpec]) -> ServiceSpec | None:
    here = tuple(p for p in service.pools if p in pools)
    if not here:
        return None
    return replace(service, pools=here,
                   backends={p: pin for p, pin in service.backends.items() if p in here})


def split(spec: Spec) -> dict[str, Spec]:
    """cluster name -> that cluster's one-cluster Spec, in the spec's order. A spec with
    `cluster:` is a fleet of one: its own name -> itself."""
    if not spec.clusters:
        return {spec.cluster_name: spec}
    out = {}
    used_rules = {p.crush_rule for p in spec.pools.values() if p.crush_rule}
    for name, settings in spec.clusters.items():
        pools = cluster_pools(spec, name)
        services = {k: s for k, s in ((k, _service_here(s, pools))
                                      for k, s in spec.services.items()) if s}
        clients = dict(spec.clients)
        m = spec.mirroring
        if m and name in (m.primary, m.secondary):
            user = mirror_user(spec, name)
            clients[user] = ClientSpec(user, mirror_caps())
        wanted_rules = {p.crush_rule for p in pools.values()}
        rules = {n: r for n, r in spec.crush_rules.items()
                 if n in wanted_rules or n not in used_rules}
        out[name] = replace(spec, cluster=settings, pools=pools, services=services,
                            clients=clients, crush_rules=rules, clusters={}, mirroring=None,
                            render=None, cluster_name=name,
                            keyrings=replace(spec.keyrings, cluster_name=name))
    return out


def mirror_user(spec: Spec, cluster: str) -> str:
    """The rbd-mirror daemon's user on `cluster`: rbd-mirror.<cluster>, as Ceph names a
    daemon's own user (client.rbd-mirror.<id>), so each side's daemon has its own key."""
    return f"{spec.mirroring.user}.{cluster}"


def availability_zone(spec: Spec, cluster: str) -> str:
    """The OpenStack availability zone of a cluster's services (its name unless set)."""
    return spec.clusters[cluster].availability_zone or cluster


def pool_cluster(spec: Spec, pool: str) -> str:
    return spec.pools[pool].cluster or spec.cluster_name
