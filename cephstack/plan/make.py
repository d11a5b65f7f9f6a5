"""The pure planner: make_plan(spec, observed state) -> Plan (actions.py holds the types).

Nothing is deleted unless asked: what cephstack created and the spec no longer declares
is removed only with --prune (prune.py decides). Changes that move data or may break a
running client are marked disruptive; apply runs them only when explicitly allowed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from cephstack.keyfiles import keyring_dir_problem
from cephstack.plan.actions import (  # re-exported: callers import actions from the planner
    RBD_APPLICATION,
    Action,
    Change,
    CreateClient,
    CreateCrushRule,
    CreatePool,
    FixKeyringAccess,
    InitPool,
    Plan,
    RemoveRenderedFile,
    RewriteRenderedFile,
    UpdateCaps,
    UpdatePool,
    WriteKeyring,
    _differences,
)
from cephstack.plan.crush import bucket, classes_under, rule_reach
from cephstack.plan.extras import extra_actions
from cephstack.plan.keyopinions import key_notes
from cephstack.plan.opinions import foreseen
from cephstack.plan.prune import prune_plan
from cephstack.plan.settings import change_command, settings_json, source_note, source_text
from cephstack.plan.state import (
    POOL_INIT_MISSING,
    POOL_INIT_STARTED,
    POOL_INIT_UNKNOWN,
    ClusterState,
    CrushRule,
    PoolState,
    counted_osds,
)
from cephstack.spec.caps import Caps
from cephstack.spec.catalog import desired_clients
from cephstack.spec.load import CrushRuleSpec, PoolSpec, Spec

__all__ = ["RBD_APPLICATION", "Action", "Change", "CreateClient", "CreateCrushRule", "CreatePool",
           "FixKeyringAccess", "InitPool", "Plan", "RemoveRenderedFile", "RewriteRenderedFile",
           "UpdateCaps", "UpdatePool", "WriteKeyring", "make_plan"]

if TYPE_CHECKING:  # rendering is imported only when the spec asks for it
    from cephstack.session.drift import RenderedOnDisk

# -- planner ----------------------------------------------------------------------


def _pool_changes(want: PoolSpec, have: PoolState) -> tuple[Change, ...]:
    out = []
    if want.autoscale:
        if have.autoscale_mode != "on":
            out.append(Change("autoscale", have.autoscale_mode, "on"))
        if want.target_size_ratio is not None and have.target_size_ratio != want.target_size_ratio:
            out.append(Change("target_size_ratio", have.target_size_ratio, want.target_size_ratio))
    else:
        if have.autoscale_mode != "off":
            out.append(Change("autoscale", have.autoscale_mode, "off"))
        # The autoscaler owns pg_num when on; otherwise the spec does.
        if have.pg_num != want.pg_num:
            shrink = want.pg_num < have.pg_num
            out.append(Change("pg_num", have.pg_num, want.pg_num, shrink,
                              "merging placement groups moves data" if shrink else ""))
    if want.size is not None and have.size != want.size:
        out.append(Change("size", have.size, want.size, True,
                          "changing the replica count moves data"))
    if want.min_size is not None and have.min_size != want.min_size:
        out.append(Change("min_size", have.min_size, want.min_size))
    if want.crush_rule is not None and have.crush_rule != want.crush_rule:
        out.append(Change("crush_rule", have.crush_rule, want.crush_rule, True,
                          "a new placement rule moves data"))
    if have.quota_max_bytes != want.quota.max_bytes:
        out.append(Change("quota_max_bytes", have.quota_max_bytes, want.quota.max_bytes))
    if have.quota_max_objects != want.quota.max_objects:
        out.append(Change("quota_max_objects", have.quota_max_objects, want.quota.max_objects))
    return tuple(out)


def _pg_budget(spec: Spec, state: ClusterState) -> tuple[str, ...]:
    """Refuse a plan that adds PG replicas (new pools, pg_num or size increases) when the
    pools would then hold more than mon_max_pg_per_osd x the OSDs in (counted as the audit
    counts them): the monitor rejects that half-way, or leaves every OSD over its limit."""
    total, growth = 0, []
    for name, have in state.pools.items():
        want = spec.pools.get(name)
        pg = max(have.pg_num, want.pg_num) if want and not want.autoscale else have.pg_num
        size = (want.size if want else None) or have.size
        total += pg * size
        if pg * size > have.pg_num * have.size:
            growth.append(f"{name} {have.pg_num} x {have.size} -> {pg} x {size}")
    for name, want in spec.pools.items():
        if name not in state.pools:
            size = want.size or state.default_pool_size
            total += want.pg_num * size
            growth.append(f"{name} (new) {want.pg_num} x {size}")
    osds = counted_osds(state)
    limit = state.max_pg_per_osd * osds
    if not growth or total <= limit:
        return ()
    shown = "; ".join(growth[:5]) + (f"; and {len(growth) - 5} more" if len(growth) > 5 else "")
    where = source_note(state, "mon_max_pg_per_osd").replace(" (", " (mon_max_pg_per_osd ", 1)
    return (f"placement-group budget exceeded: the pools would hold {total} PG replicas "
            f"(pg_num x size; growing: {shown}), more than mon_max_pg_per_osd "
            f"{state.max_pg_per_osd} x {osds} OSD(s) in = {limit}{where}; fix: lower "
            "pg_num, use autoscale: true, or add OSDs",)


def _init_pending(want: PoolSpec, have: PoolState) -> bool:
    """This plan runs `rbd pool init` (or its unfinished half) on the existing pool."""
    return want.init and (RBD_APPLICATION not in have.applications
                          or have.pool_init in (POOL_INIT_MISSING, POOL_INIT_STARTED))


def _planned_rules(spec: Spec, state: ClusterState) -> dict[str, CrushRule]:
    """The spec's rules the cluster lacks, with the reach they will have (id -1: not yet)."""
    return {name: rule_reach(name, -1, [(want.root, want.device_class)], want.failure_domain,
                             state.crush_nodes)
            for name, want in spec.crush_rules.items() if name not in state.rules}


def _reach_text(rule: CrushRule) -> str:
    osds = f"{rule.osds} OSD(s), {rule.osds_usable} up and in"
    return osds if rule.failure_domain == "osd" else \
        f"{osds}, in {rule.domains} {rule.failure_domain}(s)"


def _rule_refusals(spec: Spec, state: ClusterState,
                   planned: Mapping[str, CrushRule]) -> tuple[str, ...]:
    """A spec rule the cluster has must be what the spec says (Ceph cannot change a rule
    in place); one to be created must reach an OSD (the monitor refuses a device class no
    OSD under the root has, or a root that is not there)."""
    out = []
    for name, want in spec.crush_rules.items():
        addr = f"crush_rule.{name}"
        have = state.rules.get(name)
        if have is not None:
            if differs := _rule_differences(want, have):
                out.append(
                    f"{addr}: the cluster's rule {name!r} differs from the spec ("
                    f"{'; '.join(differs)}); Ceph cannot change a rule in place, and what a "
                    "rule selects decides where the data of every pool using it lives; fix: "
                    f"name a new rule (e.g. {name}-{want.failure_domain}) in crush_rules and "
                    "point the pools at it (changing a pool's crush_rule moves its data: "
                    "--allow-disruptive), or make the spec say what the cluster has")
            continue
        rule = planned[name]
        if not state.crush_nodes or rule.osds:  # tree not observed, or it reaches OSDs
            continue
        if bucket(state.crush_nodes, want.root) is None:
            roots = sorted(n.name for n in state.crush_nodes.values() if n.type == "root")
            out.append(f"{addr}: root {want.root!r} is not a bucket of the CRUSH tree (its "
                       f"roots: {', '.join(roots) or 'none'}); the monitor would refuse the "
                       "rule; fix: root: one of them")
            continue
        classes = classes_under(state.crush_nodes, want.root)
        held = ", ".join(f"{n} {c}" for c, n in classes.items()) or "none"
        if want.device_class:
            others = ", ".join(c for c in classes if c != "none") or "none"
            out.append(f"{addr}: no OSD under root {want.root!r} has device class "
                       f"{want.device_class!r} (its OSDs by class: {held}); the rule would "
                       "reach 0 OSDs (the monitor refuses it); fix: device_class: one of "
                       f"{others}, or add OSDs of class {want.device_class} under "
                       f"{want.root!r} first")
        else:
            out.append(f"{addr}: root {want.root!r} holds no OSD; the rule would reach 0 "
                       "OSDs and place nothing; fix: a root that holds OSDs")
    return tuple(out)


def _rule_differences(want: CrushRuleSpec, have: CrushRule) -> list[str]:
    out = [] if have.replicated else ["cluster: an erasure-code rule; spec: replicated"]
    for field, cluster, spec in (("root", have.root, want.root),
                                 ("device_class", have.device_class, want.device_class),
                                 ("failure_domain", have.failure_domain, want.failure_domain)):
        if cluster != spec:
            out.append(f"{field}: cluster {cluster or '(any)'}, spec {spec or '(any)'}")
    return out


def _placement_problems(want: PoolSpec, have: PoolState | None, state: ClusterState,
                        size: int, size_is: str,
                        rules: Mapping[str, CrushRule]) -> list[str]:
    """The pool's rule (the spec's, else its current one, else the cluster's default for a
    new pool) must exist (in the cluster, or among the spec's rules to create), be
    replicated, reach an OSD that is up and in when the plan needs OSDs, and span `size`
    failure domains when the plan sets the size or the rule. `rules`: the cluster's and
    the spec's rules to create, with their reach."""
    if not state.rules:  # not observed: nothing to check against
        return []
    addr = f"pool.{want.name}"
    name = want.crush_rule or (have.crush_rule if have else state.default_crush_rule)
    rule = rules.get(name) if name else None
    if rule is None:
        if want.crush_rule is None:
            return []
        return [f"{addr}: crush_rule {name!r} does not exist in the cluster (its rules: "
                f"{', '.join(sorted(state.rules))}) nor in the spec's crush_rules; fix: name "
                "one of them, or define it under crush_rules"]
    new_rule = have is None or have.crush_rule != name
    if new_rule and not rule.replicated:
        return [f"{addr}: crush rule {name!r} is an erasure-code rule; a replicated pool "
                "cannot use it; fix: name a replicated rule"]
    needs_osds = new_rule or _init_pending(want, have)  # have is None -> new_rule
    if needs_osds and rule.osds_usable == 0:
        return [f"{addr}: crush rule {name!r} reaches no OSD that is up and in ({rule.where}: "
                f"{rule.osds} OSD(s), 0 up and in); the pool could store nothing; fix: bring "
                "OSDs under it up and in, or name another crush_rule"]
    new_size = have is None or have.size != size
    if (new_rule or new_size) and size > rule.domains:
        kind = "OSD" if rule.failure_domain == "osd" else rule.failure_domain
        reach = (f"{rule.domains} OSD(s) that are in" if kind == "OSD" else
                 f"{rule.domains} {kind}(s) holding an OSD that is in")
        return [f"{addr}: {size_is} needs {size} distinct {kind}s, but crush rule {name!r} "
                f"reaches {reach} ({rule.where}); its PGs would never be complete; fix: "
                f"size {max(rule.domains, 1)}, or a rule over more {kind}s"]
    return []


def _pool_problems(want: PoolSpec, have: PoolState | None, state: ClusterState,
                   rules: Mapping[str, CrushRule]) -> list[str]:
    addr = f"pool.{want.name}"
    out = []
    if (have is not None and want.init and have.applications
            and RBD_APPLICATION not in have.applications):
        out.append(f"{addr} exists with application {', '.join(have.applications)}: it "
                   "cannot also become an RBD pool (the monitor refuses a second "
                   "application: apply would stop half-way); fix: give the spec's pool "
                   "another name, or take it out of the spec")
    grows = have is None or (not want.autoscale and want.pg_num > have.pg_num)
    if grows and want.pg_num > state.max_pool_pg_num:
        out.append(f"{addr}: pg_num {want.pg_num} is over the monitor's limit "
                   f"mon_max_pool_pg_num {state.max_pool_pg_num}"
                   f"{source_note(state, 'mon_max_pool_pg_num')}; fix: pg_num "
                   f"{state.max_pool_pg_num} or less (or raise it: "
                   f"{change_command(state, 'mon_max_pool_pg_num', want.pg_num)})")
    size = want.size or (have.size if have else state.default_pool_size)
    size_is = f"size {size}" + ("" if want.size else " (its current size)" if have
                                else " (the cluster's default, "
                                f"{source_text(state, 'osd_pool_default_size')})")
    if want.min_size is not None and want.min_size > size:
        out.append(f"{addr}: min_size {want.min_size} is above {size_is}; the monitor "
                   f"refuses it; fix: set size: {want.min_size} or more, or lower min_size")
    return out + _placement_problems(want, have, state, size, size_is, rules)


def _pool_refusals(spec: Spec, state: ClusterState) -> tuple[str, ...]:
    """What the monitors would reject, or could never serve, found before anything changes."""
    planned = _planned_rules(spec, state)
    out: list[str] = list(_rule_refusals(spec, state, planned))
    rules = {**planned, **state.rules}
    for name, want in spec.pools.items():
        out += _pool_problems(want, state.pools.get(name), state, rules)
    return (*out, *_pg_budget(spec, state))


def _init_unknown(name: str, state: ClusterState) -> str:
    health = state.health
    inactive = health.inactive_pgs(name) if health else None
    if inactive and health and health.pool_pg_states:
        states = health.pool_pg_states.get(name, {})
        bad = ", ".join(sorted(s for s in states if "active" not in s.split("+")))
        why = f"{inactive} of {sum(states.values())} PGs are not active ({bad})"
    elif inactive is None:
        why = "its PG states are not known yet (no manager report)"
    else:
        why = "its rbd_info object could not be read"
    return f"pool.{name}: rbd pool init not checked: {why}; plan again once its PGs are active"


def _keyring_refusals(spec: Spec, state: ClusterState) -> tuple[str, ...]:
    """Keyring files must not go where another user could swap them, nor to an owner or
    group this host does not have (found now, not half-way through apply)."""
    k = spec.keyrings
    if not k.manage:
        return ()
    dirs = {os.path.dirname(f.path) or ".": f.dir_mode for f in state.keyring_files.values()}
    out = [p for d, mode in sorted(dirs.items()) if (p := keyring_dir_problem(d, mode))]
    for field, kind, name in (("owner", "user", k.owner), ("group", "group", k.group)):
        if name and state.accounts.get(f"{kind} {name}") is False:
            out.append(f"keyrings.{field}: no {kind} {name!r} on this host; fix: create it "
                       f"or name another {kind}")
    return tuple(out)


def make_plan(spec: Spec, state: ClusterState,
              rendered: Sequence[RenderedOnDisk] = ()) -> Plan:
    """Compare the spec with the observed state; return the actions that close the gap.
    `rendered`: the spec's rendered files against the disk; those pending a user this plan
    creates are written by apply once the user exists."""
    actions: list[Action] = []
    notes: list[str] = []
    planned = _planned_rules(spec, state)
    for name, want in spec.crush_rules.items():  # before the pools that may use them
        if name in planned:
            actions.append(CreateCrushRule(want, _reach_text(planned[name])
                                           if state.crush_nodes else None))
    for name, want in spec.pools.items():
        have = state.pools.get(name)
        if have is None:
            actions.append(CreatePool(want))
            continue
        if want.init and RBD_APPLICATION not in have.applications:
            actions.append(InitPool(name, have.applications))
        elif want.init and have.pool_init in (POOL_INIT_MISSING, POOL_INIT_STARTED):
            actions.append(InitPool(name, have.applications, have.pool_init))
        elif want.init and have.pool_init == POOL_INIT_UNKNOWN:
            notes.append(_init_unknown(name, state))
        if changes := _pool_changes(want, have):
            actions.append(UpdatePool(name, changes))

    wanted = desired_clients(spec)
    for entity, client in wanted.items():
        have_client = state.clients.get(entity)
        if have_client is None:
            actions.append(CreateClient(entity, client.text, state.auth.preferred))
            continue
        current = Caps.parse(have_client.caps)
        if current != client.caps:
            actions.append(UpdateCaps(entity, have_client.caps, client.text,
                                      tuple(current.missing_from(client.caps))))

    k = spec.keyrings
    for entity in wanted if k.manage else ():
        path = k.path_for(entity)
        on_disk = state.keyring_files.get(entity)
        cluster_key = state.clients[entity].key if entity in state.clients else None
        if on_disk is None or not on_disk.exists:
            actions.append(WriteKeyring(path, entity, "missing", k.mode, k.owner, k.group))
        elif cluster_key is None or on_disk.key != cluster_key:
            actions.append(WriteKeyring(path, entity, "key differs from the cluster's",
                                        k.mode, k.owner, k.group))
        elif on_disk.several_sections:  # another key in it is one edit away from being used
            actions.append(WriteKeyring(path, entity, f"several sections for {entity} "
                                        "(Ceph uses the last)", k.mode, k.owner, k.group))
        else:
            access = [Change("mode", f"{on_disk.mode:04o}", f"{k.mode:04o}")
                      ] if on_disk.mode != k.mode else []
            if k.owner and on_disk.owner != k.owner:
                access.append(Change("owner", on_disk.owner, k.owner))
            if k.group and on_disk.group != k.group:
                access.append(Change("group", on_disk.group, k.group))
            if access:
                actions.append(FixKeyringAccess(path, tuple(access), k.mode, k.owner, k.group))

    extra, extra_notes = extra_actions(spec, state)  # trash schedules, msgr2 (issue 20)
    actions += extra
    notes += extra_notes
    for f in rendered:
        if f.wanted is None:
            actions.append(RemoveRenderedFile(f))
        elif not f.in_sync:
            actions.append(RewriteRenderedFile(f, _differences(f.on_disk, f.wanted)))

    # What cephstack created and the spec dropped: removed last, only with --prune.
    pruning = prune_plan(spec, state, wanted)
    actions += pruning.actions
    notes += pruning.notes
    notes += foreseen(spec, state)  # what audit will call wrong, said before apply makes it
    notes += key_notes(state, wanted)
    ours = {*pruning.candidates.pools, *pruning.candidates.users}
    unmanaged_pools = tuple(sorted(n for n in state.pools
                                   if n not in spec.pools and n not in ours))
    unmanaged_clients = tuple(sorted(
        e for e in state.clients if e not in wanted and e != spec.cluster.client
        and not e.startswith("client.bootstrap-") and e not in ours))
    pending = spec.render.directory if spec.render and any(
        f.wanted and f.wanted.pending for f in rendered) else None
    return Plan(tuple(actions), unmanaged_pools, unmanaged_clients,
                _pool_refusals(spec, state) + _keyring_refusals(spec, state)
                + pruning.refusals,
                state.fingerprint(), pending,
                spec.render.directory if spec.render else None,
                health=state.health, notes=tuple(notes), settings=settings_json(state))
