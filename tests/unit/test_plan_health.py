"""Health-aware planning as tables: (spec, observed state) -> refusals, actions, notes; the
health line in the plan views; observe's pure readers over JSON the monitor really sent."""

from __future__ import annotations

import errno
import json
from dataclasses import replace

import pytest

from cephstack.adopt.audit import audit
from cephstack.ceph import observe as obs
from cephstack.errors import CephCommandError
from cephstack.keyfiles import Secret
from cephstack.plan.make import CreatePool, InitPool, UpdatePool, make_plan
from cephstack.plan.state import (
    POOL_INIT_MISSING,
    POOL_INIT_STARTED,
    POOL_INIT_UNKNOWN,
    POOL_VALIDATED,
    ClientState,
    ClusterState,
    CrushRule,
    Health,
    PoolState,
    counted_osds,
)
from cephstack.report.views import dumps, health_line, plan_json, plan_text
from cephstack.spec.load import parse_spec


def rule(name="replicated_rule", usable=1, domains=1, osds=None, replicated=True,
         domain="osd", root="default", device_class=None, rid=0):
    return CrushRule(name, rid, replicated, root, device_class, domain,
                     usable if osds is None else osds, usable, domains)


RULES = {"replicated_rule": rule(),
         "on-empty": rule("on-empty", usable=0, domains=0, root="empty", rid=1),
         "three-hosts": rule("three-hosts", usable=6, domains=3, domain="host", rid=2),
         "ec": rule("ec", replicated=False, rid=3)}
HEALTHY = Health("HEALTH_OK", 1, 1, 1, 33, {"active+clean": 33})


def pool(name, pg=32, size=1, apps=("rbd",), rule_name="replicated_rule", min_size=1,
         init=POOL_VALIDATED):
    return PoolState(name, pg, size, min_size, rule_name, "off", 0.0, tuple(apps), 0, 0, init)


def cluster(*pools, osds_in=1, default_size=1, **kw):
    return ClusterState("f", {p.name: p for p in pools}, osds_in=osds_in,
                        default_pool_size=default_size, rules=kw.pop("rules", RULES),
                        default_crush_rule=kw.pop("default_rule", "replicated_rule"),
                        health=kw.pop("health", HEALTHY), **kw)


def plan_of(spec_text, state):
    return make_plan(parse_spec(spec_text), state)


def refusal(spec_text, state):
    [only] = plan_of(spec_text, state).refusals
    return only


# -- refusals ------------------------------------------------------------------------


@pytest.mark.parametrize("spec, state, words", [
    # a rule the cluster does not have: new pool, or an existing pool moved to it
    ("pools: {a: {crush_rule: fast}}", cluster(),
     ["pool.a", "crush_rule 'fast' does not exist",
      "its rules: ec, on-empty, replicated_rule, three-hosts"]),
    ("pools: {a: {crush_rule: fast}}", cluster(pool("a")), ["pool.a", "'fast' does not exist"]),
    # a rule reaching no OSD that is up and in: the spec's, the default, a new target
    ("pools: {a: {crush_rule: on-empty}}", cluster(),
     ["pool.a", "crush rule 'on-empty' reaches no OSD that is up and in",
      "root 'empty': 0 OSD(s), 0 up and in"]),
    ("pools: {a: {}}", cluster(default_rule="on-empty"), ["pool.a", "'on-empty' reaches no OSD"]),
    ("pools: {a: {crush_rule: on-empty}}", cluster(pool("a")), ["'on-empty' reaches no OSD"]),
    # an existing pool the plan must initialise, on a rule that reaches nothing
    ("pools: {a: {}}", cluster(pool("a", apps=(), rule_name="on-empty")),
     ["pool.a", "'on-empty' reaches no OSD"]),
    ("pools: {a: {}}", cluster(pool("a", rule_name="on-empty", init=POOL_INIT_MISSING)),
     ["pool.a", "'on-empty' reaches no OSD"]),
    # an erasure-code rule for a replicated pool
    ("pools: {a: {crush_rule: ec}}", cluster(), ["pool.a", "'ec' is an erasure-code rule"]),
    # pg_num over the monitor's per-pool limit: a new pool and an increase
    ("pools: {a: {pg_num: 4096}}", cluster(max_pool_pg_num=2048, osds_in=100),
     ["pool.a", "pg_num 4096", "mon_max_pool_pg_num 2048"]),
    ("pools: {a: {pg_num: 4096}}", cluster(pool("a", pg=1024), max_pool_pg_num=2048,
                                           osds_in=100),
     ["pool.a", "pg_num 4096", "mon_max_pool_pg_num 2048"]),
    # the PG budget counts pg_num increases, not only new pools
    ("pools: {a: {pg_num: 256}}", cluster(pool("a", pg=32)),
     ["placement-group budget exceeded", "256 PG replicas", "a 32 x 1 -> 256 x 1",
      "250 x 1 OSD(s) in = 250"]),
    ("pools: {a: {size: 3}}", cluster(pool("a", pg=128), osds_in=1,
                                      rules={"replicated_rule": rule(domains=3, usable=3)}),
     ["placement-group budget exceeded", "384 PG replicas", "a 128 x 1 -> 128 x 3"]),
    # a pool that serves another application cannot become an RBD pool
    ("pools: {fs: {}}", cluster(pool("fs", apps=("cephfs",), init=None)),
     ["pool.fs exists with application cephfs", "cannot also become an RBD pool"]),
    # size above what the failure domain allows: the spec's size, the cluster's default
    ("pools: {a: {size: 3}}", cluster(),
     ["pool.a: size 3 needs 3 distinct OSDs", "'replicated_rule' reaches 1 OSD(s)"]),
    ("pools: {a: {}}", cluster(default_size=3),
     ["pool.a: size 3 (the cluster's default, osd_pool_default_size) needs 3 distinct OSDs"]),
    ("pools: {a: {size: 3}}", cluster(pool("a")), ["pool.a: size 3 needs 3 distinct OSDs"]),
    ("pools: {a: {size: 3, crush_rule: three-hosts}}",
     cluster(rules={**RULES, "three-hosts": rule("three-hosts", 6, 2, domain="host")}),
     ["size 3 needs 3 distinct hosts", "reaches 2 host(s) holding an OSD that is in"]),
    # min_size above the size it would get
    ("pools: {a: {min_size: 2}}", cluster(),
     ["pool.a: min_size 2 is above size 1 (the cluster's default, osd_pool_default_size)"]),
    ("pools: {a: {min_size: 2}}", cluster(pool("a")),
     ["pool.a: min_size 2 is above size 1 (its current size)"]),
])
def test_refusals_name_the_pool_the_rule_and_the_numbers(spec, state, words):
    text = refusal(spec, state)
    for w in words:
        assert w in text, text


@pytest.mark.parametrize("spec, state", [
    ("pools: {a: {size: 3, crush_rule: three-hosts}}", cluster(osds_in=6)),
    ("pools: {a: {}}", cluster(pool("a", size=3, min_size=2))),  # already so: not this plan's
    ("pools: {a: {pg_num: 64}}", cluster(pool("a", rule_name="on-empty"))),  # needs no OSD
    ("pools: {a: {}}", cluster(pool("a", pg=4096), max_pool_pg_num=2048)),  # no increase
    ("pools: {fs: {init: false}}", cluster(pool("fs", apps=("cephfs",), init=None))),
    ("pools: {a: {crush_rule: fast}}", cluster(rules={})),  # rules not observed
])
def test_what_can_succeed_is_not_refused(spec, state):
    assert plan_of(spec, state).refusals == ()


def test_no_growth_is_not_refused_on_a_cluster_already_over_budget():
    state = cluster(pool("a", pg=512))
    plan = plan_of("pools: {a: {pg_num: 512, quota: {max_objects: 10}}}", state)
    assert plan.refusals == () and [type(a) for a in plan.actions] == [UpdatePool]


def test_plan_and_audit_count_osds_the_same_way():
    state = cluster(pool("a", pg=200, size=3), osds_in=2)  # 600 replicas, 2 OSDs: 300 each
    assert counted_osds(state) == 2
    assert "pgs-per-osd-over-limit" in [f.id for f in audit(state)]
    text = refusal("pools: {a: {pg_num: 200, size: 3}, b: {pg_num: 8}}", state)
    assert "250 x 2 OSD(s) in = 500" in text
    assert counted_osds(cluster(osds_in=0)) == 1


def test_refusals_leave_the_actions_for_review():
    plan = plan_of("pools: {a: {crush_rule: on-empty}, b: {}}", cluster())
    assert [type(a) for a in plan.actions] == [CreatePool, CreatePool]
    assert len(plan.refusals) == 1


# -- converged means usable: pool init that never finished ------------------------------


@pytest.mark.parametrize("init, before", [
    (POOL_INIT_MISSING, "not finished: no rbd_info object"),
    (POOL_INIT_STARTED, "not finished: validation started, never finished"),
])
def test_unfinished_pool_init_is_drift(init, before):
    plan = plan_of("pools: {vm: {}}", cluster(pool("vm", init=init)))
    [action] = plan.actions
    assert isinstance(action, InitPool) and action.pool_init == init
    assert [(c.field, c.before, c.after) for c in action.changes()] == [
        ("rbd pool init", before, "validated")]
    assert not plan.refusals and not plan.disruptive
    assert "~ pool.vm" in plan_text(plan) and "rbd pool init: " in plan_text(plan)


@pytest.mark.parametrize("spec, init", [
    ("pools: {vm: {}}", POOL_VALIDATED),
    ("pools: {vm: {}}", None),  # not read
    ("pools: {vm: {init: false}}", POOL_INIT_MISSING),  # adopted pools are left alone
])
def test_validated_or_unmanaged_init_is_no_change(spec, init):
    plan = plan_of(spec, cluster(pool("vm", init=init)))
    assert plan.empty and plan.notes == ()


def test_unknown_pool_init_is_a_note_not_an_action():
    health = Health("HEALTH_WARN", 1, 1, 1, 40, {"active+clean": 32, "creating+peering": 8},
                    pool_pg_states={"vm": {"creating+peering": 8}, "x": {"active+clean": 32}})
    plan = plan_of("pools: {vm: {pg_num: 8}}",
                   cluster(pool("vm", pg=8, init=POOL_INIT_UNKNOWN), health=health))
    assert plan.empty and not plan.refusals
    [note] = plan.notes
    assert note.startswith("pool.vm: rbd pool init not checked: 8 of 8 PGs are not active "
                           "(creating+peering)")
    assert f"Note: {note}" in plan_text(plan)
    assert json.loads(dumps(plan_json(plan)))["notes"] == [note]


def test_unknown_pool_init_without_pg_states_says_so():
    state = cluster(pool("vm", init=POOL_INIT_UNKNOWN), health=replace(HEALTHY, pgs_known=False))
    [note] = plan_of("pools: {vm: {}}", state).notes
    assert "PG states are not known" in note
    [note] = plan_of("pools: {vm: {}}", cluster(pool("vm", init=POOL_INIT_UNKNOWN))).notes
    assert "rbd_info object could not be read" in note


# -- the health line -----------------------------------------------------------------------


@pytest.mark.parametrize("health, line", [
    (Health("HEALTH_OK", 3, 3, 3, 128, {"active+clean": 128}),
     "Cluster: HEALTH_OK, 3 OSDs (3 up, 3 in), 128 PGs active+clean"),
    (Health("HEALTH_WARN", 3, 2, 3, 128, {"active+clean": 96,
                                          "active+undersized+degraded": 32}),
     "Cluster: HEALTH_WARN, 3 OSDs (2 up, 3 in), 128 PGs: 96 active+clean, "
     "32 active+undersized+degraded"),
    (Health("HEALTH_OK", 1, 1, 1, 1, {"active+clean": 1}),
     "Cluster: HEALTH_OK, 1 OSD (1 up, 1 in), 1 PG active+clean"),
    (Health("", 1, 0, 1, 9, {"active+clean": 9}, pgs_known=False),
     "Cluster: 1 OSD (0 up, 1 in), 9 PGs, states unknown (no active manager)"),
    (Health("HEALTH_OK", 0, 0, 0, 0, {}), "Cluster: HEALTH_OK, 0 OSDs (0 up, 0 in), 0 PGs"),
])
def test_health_line(health, line):
    assert health_line(health) == line


def test_plan_views_lead_with_the_health_line():
    plan = plan_of("pools: {a: {}}", cluster(pool("a")))
    text = plan_text(plan)
    assert text.splitlines()[0] == "Cluster: HEALTH_OK, 1 OSD (1 up, 1 in), 33 PGs active+clean"
    assert text.endswith("No changes: the cluster matches the spec.")
    data = json.loads(dumps(plan_json(plan)))
    assert data["cluster"]["summary"] == text.splitlines()[0]
    assert data["cluster"]["osds"] == {"total": 1, "up": 1, "in": 1}
    assert data["cluster"]["pgs"]["by_state"] == {"active+clean": 33}
    assert data["notes"] == []
    bare = make_plan(parse_spec("pools: {a: {}}"), ClusterState("f", osds_in=1))
    assert not plan_text(bare).startswith("Cluster:") and plan_json(bare)["cluster"] is None


def test_health_is_not_part_of_the_fingerprint():
    a = cluster(pool("a"))
    b = replace(a, health=Health("HEALTH_WARN", 1, 0, 1, 33, {"stale+active+clean": 33}))
    assert a.fingerprint() == b.fingerprint()
    c = replace(a, pools={"a": pool("a", init=POOL_INIT_MISSING)})
    assert a.fingerprint() != c.fingerprint()


# -- observe's readers, over output a Pacific sandbox sent --------------------------------

TREE = {"nodes": [
    {"id": -5, "name": "empty", "type": "root", "type_id": 11, "children": []},
    {"id": -1, "name": "default", "type": "root", "type_id": 11, "children": [-3]},
    {"id": -3, "name": "vm", "type": "host", "type_id": 1, "pool_weights": {}, "children": [0]},
    {"id": 0, "device_class": "hdd", "name": "osd.0", "type": "osd", "type_id": 0,
     "crush_weight": 0.0038909912109375, "depth": 2, "pool_weights": {}, "exists": 1,
     "status": "up", "reweight": 1, "primary_affinity": 1}], "stray": []}
RULE_DUMP = [
    {"rule_id": 0, "rule_name": "replicated_rule", "ruleset": 0, "type": 1, "min_size": 1,
     "max_size": 10, "steps": [{"op": "take", "item": -1, "item_name": "default"},
                               {"op": "choose_firstn", "num": 0, "type": "osd"},
                               {"op": "emit"}]},
    {"rule_id": 1, "rule_name": "on-empty", "ruleset": 1, "type": 1, "min_size": 1,
     "max_size": 10, "steps": [{"op": "take", "item": -5, "item_name": "empty"},
                               {"op": "choose_firstn", "num": 0, "type": "osd"},
                               {"op": "emit"}]},
    {"rule_id": 2, "rule_name": "hdd-host", "ruleset": 2, "type": 1, "min_size": 1,
     "max_size": 10, "steps": [{"op": "take", "item": -2, "item_name": "default~hdd"},
                               {"op": "chooseleaf_firstn", "num": 0, "type": "host"},
                               {"op": "emit"}]},
    {"rule_id": 3, "rule_name": "ecrule", "ruleset": 3, "type": 3, "min_size": 3,
     "max_size": 3, "steps": [{"op": "set_chooseleaf_tries", "num": 5},
                              {"op": "take", "item": -1, "item_name": "default"},
                              {"op": "choose_indep", "num": 0, "type": "osd"},
                              {"op": "emit"}]}]
STATUS = {
    "health": {"status": "HEALTH_OK", "checks": {}, "mutes": []},
    "osdmap": {"epoch": 19, "num_osds": 1, "num_up_osds": 1, "osd_up_since": 1795628059,
               "num_in_osds": 1, "osd_in_since": 1795628056, "num_remapped_pgs": 0},
    "pgmap": {"pgs_by_state": [{"state_name": "unknown", "count": 8},
                               {"state_name": "undersized+peered", "count": 8},
                               {"state_name": "active+clean", "count": 1}],
              "num_pgs": 17, "num_pools": 3},
    "mgrmap": {"available": True, "num_standbys": 0}}


def test_rules_reach_from_the_osd_tree():
    rules = obs._rules(RULE_DUMP, TREE)
    assert rules["replicated_rule"] == CrushRule("replicated_rule", 0, True, "default", None,
                                                 "osd", 1, 1, 1)
    assert (rules["on-empty"].osds, rules["on-empty"].osds_usable) == (0, 0)
    hdd = rules["hdd-host"]
    assert (hdd.device_class, hdd.failure_domain, hdd.domains, hdd.where) == (
        "hdd", "host", 1, "root 'default', class hdd")
    assert not rules["ecrule"].replicated


def _host(hid, name, osds):
    return {"id": hid, "name": name, "type": "host", "children": [o["id"] for o in osds]}


def _osd(oid, up=True, reweight=1, device_class="ssd", weight=1.0):
    return {"id": oid, "name": f"osd.{oid}", "type": "osd", "device_class": device_class,
            "status": "up" if up else "down", "reweight": reweight, "crush_weight": weight}


def test_rules_count_usable_osds_and_failure_domains():
    h1 = [_osd(0), _osd(1, device_class="hdd")]
    h2 = [_osd(2, up=False)]  # down but in: still a place for copies
    h3 = [_osd(3, reweight=0)]  # out: CRUSH puts nothing there
    h4 = [_osd(4, weight=0)]  # no CRUSH weight: same
    tree = {"nodes": [{"id": -1, "name": "default", "type": "root",
                       "children": [-2, -3, -4, -5]},
                      _host(-2, "h1", h1), _host(-3, "h2", h2), _host(-4, "h3", h3),
                      _host(-5, "h4", h4), *h1, *h2, *h3, *h4]}
    dump = [{"rule_id": 0, "rule_name": "r", "type": 1, "steps": [
                {"op": "take", "item": -1, "item_name": "default"},
                {"op": "chooseleaf_firstn", "num": 0, "type": "host"}, {"op": "emit"}]},
            {"rule_id": 1, "rule_name": "ssd", "type": 1, "steps": [
                {"op": "take", "item": -9, "item_name": "default~ssd"},
                {"op": "chooseleaf_firstn", "num": 0, "type": "host"}, {"op": "emit"}]},
            {"rule_id": 2, "rule_name": "nvme", "type": 1, "steps": [
                {"op": "take", "item": -8, "item_name": "default~nvme"},
                {"op": "chooseleaf_firstn", "num": 0, "type": "host"}, {"op": "emit"}]}]
    rules = obs._rules(dump, tree)
    assert (rules["r"].osds, rules["r"].osds_usable, rules["r"].domains) == (5, 2, 2)
    assert (rules["ssd"].osds, rules["ssd"].osds_usable, rules["ssd"].domains) == (4, 1, 2)
    assert (rules["nvme"].osds, rules["nvme"].domains) == (0, 0)


def test_default_rule_is_the_configured_one_else_the_first_replicated():
    assert obs._default_rule(RULE_DUMP, -1) == "replicated_rule"
    assert obs._default_rule(RULE_DUMP, 2) == "hdd-host"  # osd_pool_default_crush_rule 2
    assert obs._default_rule(RULE_DUMP[3:], -1) is None  # no replicated rule at all


def test_health_from_status():
    h = obs._health(STATUS)
    assert (h.status, h.osds, h.osds_up, h.osds_in, h.pgs) == ("HEALTH_OK", 1, 1, 1, 17)
    assert h.pg_states == {"unknown": 8, "undersized+peered": 8, "active+clean": 1}
    assert h.pgs_known and h.inactive_pgs("anything") is None  # some inactive, not read yet
    assert not obs._health({**STATUS, "mgrmap": {"available": False}}).pgs_known
    healthy = obs._health({**STATUS, "pgmap": {"pgs_by_state": [
        {"state_name": "active+clean+scrubbing", "count": 3}], "num_pgs": 3}})
    assert healthy.inactive_pgs("anything") == 0  # every PG active: no per-pool read needed


class FakeConn:
    """The adapter's surface observe uses for per-pool reads."""

    def __init__(self, objects, brief=None):
        self.objects, self.brief, self.read, self.sent = objects, brief, [], []

    def concurrently(self, calls):
        return [c() for c in calls]

    def mon(self, prefix, **args):
        self.sent.append(prefix)
        if self.brief is None:
            raise CephCommandError(prefix, errno.ETIMEDOUT, "timed out")
        return self.brief

    def read_objects(self, reads):
        out = []
        for name, obj, _length in reads:
            self.read.append((name, obj))
            value = self.objects[name]
            out.append(CephCommandError(f"read on pool {name}", value, "")
                       if isinstance(value, int) else value)
        return out


def test_pool_init_reads_one_object_per_pool_with_active_pgs():
    conn = FakeConn({"done": b"overwrite validated", "half": b"validate",
                     "none": errno.ENOENT, "slow": errno.ETIMEDOUT, "down": b"never read"})
    health = Health("HEALTH_WARN", 1, 1, 1, 40, {"active+clean": 32, "peering": 8},
                    pool_pg_states={p: {"active+clean": 8} for p in ("done", "half", "none",
                                                                       "slow")}
                    | {"down": {"peering": 8}})
    pools = [pool(n, init=None) for n in ("done", "half", "none", "slow", "down")]
    found = {n: p.pool_init for n, p in obs._pool_inits(conn, pools, health).items()}
    assert found == {"done": POOL_VALIDATED, "half": POOL_INIT_STARTED,
                     "none": POOL_INIT_MISSING, "slow": POOL_INIT_UNKNOWN,
                     "down": POOL_INIT_UNKNOWN}
    assert sorted(conn.read) == [(n, "rbd_info") for n in ("done", "half", "none", "slow")]


def test_pool_pg_states_by_pool_id():
    detail = [{"pool_id": 1, "pool_name": "a", "pg_num": 1},
              {"pool_id": 11, "pool_name": "b", "pg_num": 2},
              {"pool_id": 12, "pool_name": "new", "pg_num": 8}]  # not reported yet
    brief = {"pg_ready": True, "pg_stats": [
        {"pgid": "1.0", "state": "active+clean"}, {"pgid": "11.6", "state": "undersized+peered"},
        {"pgid": "11.7", "state": "undersized+peered"}, {"pgid": "13.0", "state": "unknown"}]}
    conn = FakeConn({}, brief)
    by_pool = obs._pool_pg_states(conn, detail)
    assert by_pool == {"a": {"active+clean": 1}, "b": {"undersized+peered": 2},
                       "new": {"unknown": 8}}
    health = Health("HEALTH_OK", 1, 1, 1, 1, {"active+clean": 1}, pool_pg_states=by_pool)
    assert [health.inactive_pgs(p) for p in ("a", "b", "new", "gone")] == [0, 2, 8, None]
    assert conn.sent == ["pg dump"]
    assert obs._pool_pg_states(FakeConn({}), detail) is None  # no manager: unknown


# -- apply --yes: the plan kept after its pools were created with the lock's record ------


def test_the_plan_is_kept_when_only_its_new_pools_changed():
    from cephstack.session.planapply import still_the_plan

    spec = "pools: {a: {}, b: {}, c: {}}\nservices: {glance: {user: g, pool: a}}"
    shown = plan_of(spec, cluster(pool("c")))
    assert {x.address for x in shown.actions if x.kind == "create_pool"} == {"pool.a", "pool.b"}
    # the new pools exist now; the manager's PG summary does not show their init yet
    made = [pool(n, apps=(), init=POOL_INIT_UNKNOWN) for n in "ab"]
    assert still_the_plan(shown, plan_of(spec, cluster(pool("c"), *made)))
    # meanwhile someone else removed pool c, or created the user: not the plan shown
    assert not still_the_plan(shown, plan_of(spec, cluster(*made)))
    by_hand = ClientState("client.g", {"mon": "profile rbd"}, Secret("AQ" + "A" * 38))
    taken = plan_of(spec, cluster(pool("c"), *made, clients={"client.g": by_hand}))
    assert not still_the_plan(shown, taken)
    # and never a plan the cluster now refuses (the plan made under the lock says why)
    refused = plan_of(spec, cluster(pool("c", apps=("cephfs",)), *made))
    assert refused.refusals and not still_the_plan(shown, refused)
