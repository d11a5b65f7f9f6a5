"""CRUSH rules in the spec: parsing, the planner's tables (create, refuse, placement checks
with the reach a rule will have), the plan's text, and apply's round for new rules."""

from __future__ import annotations

from dataclasses import replace

import pytest

from cephstack.ceph import observe as obs
from cephstack.errors import SpecError
from cephstack.plan.crush import rule_reach, tree_nodes
from cephstack.plan.make import CreateCrushRule, CreatePool, UpdatePool, make_plan
from cephstack.plan.state import ClusterState, PoolState
from cephstack.report.views import plan_json, plan_text
from cephstack.session.apply import apply_plan
from cephstack.spec.load import CrushRuleSpec, parse_spec


def _osd(oid, device_class, up=True, reweight=1):
    return {"id": oid, "name": f"osd.{oid}", "type": "osd", "device_class": device_class,
            "status": "up" if up else "down", "reweight": reweight, "crush_weight": 0.1}


# A sandbox of 3 OSDs: one host, classes hdd, ssd, hdd.
OSDS = [_osd(0, "hdd"), _osd(1, "ssd"), _osd(2, "hdd")]
TREE = {"nodes": [{"id": -1, "name": "default", "type": "root", "children": [-3]},
                  {"id": -3, "name": "box", "type": "host", "children": [0, 1, 2]}, *OSDS],
        "stray": []}
DUMP = [{"rule_id": 0, "rule_name": "replicated_rule", "type": 1, "steps": [
            {"op": "take", "item": -1, "item_name": "default"},
            {"op": "choose_firstn", "num": 0, "type": "osd"}, {"op": "emit"}]},
        {"rule_id": 1, "rule_name": "fast", "type": 1, "steps": [  # as create-replicated makes it
            {"op": "take", "item": -2, "item_name": "default~ssd"},
            {"op": "choose_firstn", "num": 0, "type": "osd"}, {"op": "emit"}]}]


def cluster(*pools: PoolState, dump=DUMP, tree=TREE) -> ClusterState:
    return ClusterState("f", {p.name: p for p in pools}, osds_in=3, default_pool_size=1,
                        rules=obs._rules(dump, tree), default_crush_rule="replicated_rule",
                        crush_nodes=tree_nodes(tree))


def pool(name, rule="replicated_rule", size=1):
    return PoolState(name, 32, size, 1, rule, "off", 0.0, ("rbd",), 0, 0, "validated")


def plan_of(text, state):
    return make_plan(parse_spec(text, "s.yaml"), state)


def problems(text):
    with pytest.raises(SpecError) as e:
        parse_spec(text, "s.yaml")
    return e.value.problems


# -- the spec ------------------------------------------------------------------------


def test_crush_rules_parse_with_defaults():
    spec = parse_spec("""
crush_rules:
  fast: {device_class: ssd, failure_domain: osd}
  wide: {}
  racks: {root: dc1, failure_domain: rack}
pools: {a: {crush_rule: fast}}
""")
    assert spec.crush_rules == {
        "fast": CrushRuleSpec("fast", "default", "ssd", "osd"),
        "wide": CrushRuleSpec("wide", "default", None, "host"),
        "racks": CrushRuleSpec("racks", "dc1", None, "rack")}
    assert spec.pools["a"].crush_rule == "fast"
    assert parse_spec("pools: {a: {}}").crush_rules == {}


def test_invalid_crush_rules_are_named_with_file_and_line():
    found = problems("""pools: {}
crush_rules:
  fast: {device_class: ssd, failure_domain: shelf}
  "bad name": {}
  odd: {device_class: "ss d", root: ""}
  extra: {weight: 3}
  notamap: [ssd]
""")
    assert found == [
        "s.yaml:3: crush_rules.fast.failure_domain: expected one of osd, host, chassis, rack, "
        "row, pdu, pod, room, datacenter, zone, region, root, got 'shelf'",
        "s.yaml:4: crush_rules.'bad name': invalid rule name 'bad name': use letters, "
        "digits, '_', '.', '-', starting with a letter or digit, at most 63 characters",
        "s.yaml:5: crush_rules.odd.root: expected CRUSH bucket name, got an empty string",
        "s.yaml:5: crush_rules.odd.device_class: invalid device class 'ss d': use letters, "
        "digits, '_', '.', '-', starting with a letter or digit, at most 63 characters",
        "s.yaml:6: crush_rules.extra.weight: unknown key; expected one of: device_class, "
        "failure_domain, root",
        "s.yaml:7: crush_rules.notamap: expected a mapping, got a list"]


# -- the planner ---------------------------------------------------------------------


def test_a_missing_rule_is_created_before_the_pools_with_its_reach():
    plan = plan_of("""
crush_rules: {slow: {device_class: hdd, failure_domain: osd}}
pools: {b: {crush_rule: slow, size: 2}}
""", cluster())
    assert plan.refusals == ()
    assert [type(a) for a in plan.actions] == [CreateCrushRule, CreatePool]
    rule = plan.actions[0]
    assert rule.address == "crush_rule.slow" and rule.kind == "create_crush_rule"
    assert rule.reach == "2 OSD(s), 2 up and in"
    text = plan_text(plan)
    assert "  + crush_rule.slow\n      root = default\n      device_class = hdd\n" \
           "      failure_domain = osd\n      reaches = \"2 OSD(s), 2 up and in\"" in text
    assert "Plan: 1 crush rule to create, 1 pool to create, 0 to change" in text
    assert plan_json(plan)["actions"][0]["kind"] == "create_crush_rule"


def test_a_rule_the_cluster_has_as_the_spec_says_is_no_change():
    plan = plan_of("""
crush_rules: {fast: {device_class: ssd, failure_domain: osd}}
pools: {a: {crush_rule: fast}}
""", cluster(pool("a", "fast")))
    assert plan.empty and plan.refusals == ()


@pytest.mark.parametrize("rule, words", [
    ("{device_class: ssd, failure_domain: host}",
     ["failure_domain: cluster osd, spec host"]),
    ("{device_class: hdd, failure_domain: osd}", ["device_class: cluster ssd, spec hdd"]),
    ("{failure_domain: osd}", ["device_class: cluster ssd, spec (any)"]),
    ("{device_class: ssd, failure_domain: osd, root: other}",
     ["root: cluster default, spec other"]),
])
def test_a_rule_that_differs_is_refused_never_changed(rule, words):
    plan = plan_of(f"crush_rules: {{fast: {rule}}}\npools: {{a: {{crush_rule: fast}}}}",
                   cluster(pool("a", "fast")))
    assert plan.empty  # nothing cephstack would do: it never changes a rule
    assert plan_text(plan).endswith("No changes cephstack can make: the refusals above say "
                                    "where the cluster differs from the spec.")
    [text] = plan.refusals
    for w in [*words, "crush_rule.fast: the cluster's rule 'fast' differs from the spec",
              "Ceph cannot change a rule in place", "name a new rule",
              "point the pools at it", "--allow-disruptive"]:
        assert w in text, text


def test_an_erasure_code_rule_of_that_name_differs():
    dump = [*DUMP, {"rule_id": 2, "rule_name": "ec", "type": 3, "steps": [
        {"op": "take", "item": -1, "item_name": "default"},
        {"op": "choose_indep", "num": 0, "type": "osd"}, {"op": "emit"}]}]
    [text] = plan_of("crush_rules: {ec: {failure_domain: osd}}", cluster(dump=dump)).refusals
    assert "cluster: an erasure-code rule; spec: replicated" in text


@pytest.mark.parametrize("spec, words", [
    # a spec rule of a class no OSD has: the rule itself, and the pool naming it
    ("crush_rules: {nv: {device_class: nvme}}\npools: {a: {crush_rule: nv}}",
     ["crush_rule.nv: no OSD under root 'default' has device class 'nvme' (its OSDs by "
      "class: 2 hdd, 1 ssd)", "device_class: one of hdd, ssd",
      "pool.a: crush rule 'nv' reaches no OSD that is up and in (root 'default', class "
      "nvme: 0 OSD(s), 0 up and in)"]),
    # size 3 over hosts, with one host
    ("crush_rules: {hosts: {}}\npools: {a: {crush_rule: hosts, size: 3}}",
     ["pool.a: size 3 needs 3 distinct hosts, but crush rule 'hosts' reaches 1 host(s) "
      "holding an OSD that is in (root 'default')", "fix: size 1"]),
    # size 2 on the one ssd OSD
    ("crush_rules: {fast2: {device_class: ssd, failure_domain: osd}}\n"
     "pools: {a: {crush_rule: fast2, size: 2}}",
     ["pool.a: size 2 needs 2 distinct OSDs, but crush rule 'fast2' reaches 1 OSD(s)"]),
    # a root the tree does not have
    ("crush_rules: {r: {root: dc9}}",
     ["crush_rule.r: root 'dc9' is not a bucket of the CRUSH tree (its roots: default)"]),
    # an existing pool moved to a spec rule that reaches nothing
    ("crush_rules: {nv: {device_class: nvme}}\npools: {a: {crush_rule: nv}}",
     ["pool.a: crush rule 'nv' reaches no OSD"]),
    # neither in the cluster nor in the spec
    ("crush_rules: {fast2: {}}\npools: {a: {crush_rule: fats}}",
     ["pool.a: crush_rule 'fats' does not exist in the cluster (its rules: fast, "
      "replicated_rule) nor in the spec's crush_rules"]),
])
def test_placement_refusals_use_the_reach_of_rules_to_create(spec, words):
    text = "\n".join(plan_of(spec, cluster()).refusals)
    for w in words:
        assert w in text, text


def test_a_rule_over_an_empty_root_is_refused():
    tree = {**TREE, "nodes": [*TREE["nodes"], {"id": -9, "name": "spare", "type": "root",
                                                "children": []}]}
    [text] = plan_of("crush_rules: {r: {root: spare}}", cluster(tree=tree)).refusals
    assert text.startswith("crush_rule.r: root 'spare' holds no OSD; the rule would reach 0")


def test_an_existing_pool_moved_to_a_spec_rule_is_checked_and_disruptive():
    plan = plan_of("crush_rules: {nv: {device_class: nvme}}\npools: {a: {crush_rule: nv}}",
                   cluster(pool("a")))
    assert any("pool.a: crush rule 'nv' reaches no OSD" in r for r in plan.refusals)
    ok = plan_of("crush_rules: {slow: {device_class: hdd, failure_domain: osd}}\n"
                 "pools: {a: {crush_rule: slow, size: 2}}", cluster(pool("a")))
    assert ok.refusals == ()
    assert [type(a) for a in ok.actions] == [CreateCrushRule, UpdatePool]
    assert ok.actions[1].disruptive  # the pool's data moves to the new rule's OSDs


@pytest.mark.parametrize("spec", [
    "crush_rules: {wide: {failure_domain: osd}}\npools: {a: {crush_rule: wide, size: 2}}",
    "crush_rules: {wide: {failure_domain: osd}}\npools: {a: {crush_rule: wide, size: 3}}",
    "crush_rules: {slow: {device_class: hdd, failure_domain: osd}}\n"
    "pools: {a: {crush_rule: slow, size: 2}}",
    "crush_rules: {hosts: {}}\npools: {a: {crush_rule: hosts}}",  # size 1: one host is enough
    "crush_rules: {unused: {failure_domain: rack}}",  # reaches OSDs; no pool needs racks
])
def test_what_the_rules_can_place_is_not_refused(spec):
    assert plan_of(spec, cluster()).refusals == ()


def test_rules_and_tree_not_observed_create_without_checks():
    plan = plan_of("crush_rules: {nv: {device_class: nvme}}\npools: {a: {crush_rule: nv}}",
                   ClusterState("f", osds_in=1))
    assert plan.refusals == ()
    assert plan.actions[0] == CreateCrushRule(CrushRuleSpec("nv", device_class="nvme"))


def test_a_down_osd_counts_for_copies_not_for_usable():
    tree = {**TREE, "nodes": [*TREE["nodes"][:2], OSDS[0], OSDS[1], _osd(2, "hdd", up=False)]}
    reach = rule_reach("slow", -1, [("default", "hdd")], "osd", tree_nodes(tree))
    assert (reach.osds, reach.osds_usable, reach.domains) == (2, 1, 2)
    out = rule_reach("slow", -1, [("default", "hdd")], "osd",
                     tree_nodes({"nodes": [*TREE["nodes"][:2], OSDS[0], OSDS[1],
                                           _osd(2, "hdd", reweight=0)]}))
    assert (out.osds, out.osds_usable, out.domains) == (2, 1, 1)  # out: no copy goes there


def test_the_tree_is_in_the_fingerprint_but_up_and_in_are_not():
    a = cluster()
    down = cluster(tree={**TREE, "nodes": [*TREE["nodes"][:4], _osd(2, "hdd", up=False,
                                                                  reweight=0)]})
    assert a.fingerprint() == down.fingerprint()
    reclassed = cluster(tree={**TREE, "nodes": [*TREE["nodes"][:4], _osd(2, "ssd")]})
    assert a.fingerprint() != reclassed.fingerprint()
    other_rule = cluster(dump=[DUMP[0], {**DUMP[1], "steps": [
        {"op": "take", "item": -2, "item_name": "default~hdd"},
        {"op": "choose_firstn", "num": 0, "type": "osd"}, {"op": "emit"}]}])
    assert a.fingerprint() != other_rule.fingerprint()


# -- apply: a round of its own, only when rules are created -------------------------------


class RecordingConn:
    """The adapter's surface apply uses, recording each mon command and each round."""

    def __init__(self):
        self.sent, self.rounds, self.commands_sent = [], 0, 0

    def concurrently(self, calls):
        self.rounds += 1
        return [c() for c in calls]

    def mon(self, prefix, **args):
        self.sent.append((prefix, args))
        self.commands_sent += 1


def test_apply_creates_rules_in_a_round_before_the_pools():
    state = cluster()
    spec = parse_spec("""
crush_rules:
  fast2: {device_class: ssd, failure_domain: osd}
  any: {}
pools: {a: {crush_rule: fast2, init: false}}
""")
    conn = RecordingConn()
    result = apply_plan(conn, make_plan(spec, state), state)  # type: ignore[arg-type]
    assert conn.sent[:2] == [
        ("osd crush rule create-replicated",
         {"name": "fast2", "root": "default", "type": "osd", "class": "ssd"}),
        ("osd crush rule create-replicated", {"name": "any", "root": "default", "type": "host"})]
    assert conn.sent[2][0] == "osd pool create" and conn.sent[2][1]["rule"] == "fast2"
    assert result.done[:2] == ["+ crush_rule fast2", "+ crush_rule any"]
    assert conn.rounds == 4  # the rules' round, then the usual three

    without = RecordingConn()
    plain = replace(spec, crush_rules={})
    apply_plan(without, make_plan(replace(plain, pools={}), state), state)  # type: ignore[arg-type]
    assert without.rounds == 3 and without.sent == []  # no rule: no extra round
