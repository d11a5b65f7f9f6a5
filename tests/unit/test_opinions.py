"""One opinion: plan notes, before apply, what audit will call wrong once the spec is
applied (cephstack/plan/opinions.py, shared by both)."""

from dataclasses import replace

from cephstack.adopt.audit import audit
from cephstack.keyfiles import Secret
from cephstack.plan.make import make_plan
from cephstack.plan.opinions import planned_pools
from cephstack.plan.state import ClientState, ClusterState, PoolState
from cephstack.spec.catalog import desired_clients
from cephstack.spec.defaults import DEFAULT_SPEC
from cephstack.spec.load import parse_spec

SPEC = parse_spec(DEFAULT_SPEC)


def _applied(spec, state: ClusterState) -> ClusterState:
    """The state after apply, as observe would read it."""
    clients = {e: ClientState(e, dict(c.text), Secret(f"key-{e}"))
               for e, c in desired_clients(spec).items()}
    return replace(state, pools=planned_pools(spec, state), clients=clients)


def _foreseen(plan) -> set[tuple[str, str]]:
    return {(note.split(": ")[0], note.split("(")[1].split(")")[0]) for note in plan.notes
            if "audit will call this" in note}


def test_size_one_with_more_osds_is_noted_before_apply():
    state = ClusterState("f", osds_in=3, default_pool_size=1)
    plan = make_plan(SPEC, state)
    assert not plan.refusals
    sized = [n for n in plan.notes if "(pool-size-one)" in n]
    assert len(sized) == 4
    assert sized[0] == ("pool.images: audit will call this an error (pool-size-one): size 1: "
                        "one copy, with 3 OSDs in; losing one disk loses data; fix: size: 3 "
                        "(and min_size: 2) in the spec")
    # A one-OSD cluster is a sandbox: nothing to say, as the audit says nothing.
    assert not [n for n in make_plan(SPEC, replace(state, osds_in=1)).notes
                if "audit will" in n]


def test_audit_after_apply_finds_nothing_plan_did_not_note():
    specs = [SPEC, parse_spec("pools: {a: {pg_num: 24, min_size: 1, size: 2}}\n"
                              "services: {cinder-volume: {user: cinder, pools: [a]},\n"
                              "           nova: {user: cinder, pool: a}}\n"
                              "clients: {tool: {caps: {mon: 'allow r', osd: 'allow rwx "
                              "pool=a'}},\n  nova-tool: {caps: {mon: 'profile rbd', "
                              "osd: 'allow rwx'}}}")]
    for spec in specs:
        for osds in (1, 3):
            state = ClusterState("f", {"old": PoolState("old", 8, 3, 2, "r", "off", 0.0,
                                                        ("rbd",), 0, 0)},
                                 osds_in=osds, default_pool_size=1)
            noted = _foreseen(make_plan(spec, state))
            found = {(f.entity.replace("pool ", "pool."), f.id)
                     for f in audit(_applied(spec, state), spec)}
            assert found <= noted, found - noted
    assert {("pool.a", "pool-min-size-one"), ("pool.a", "pg-num-not-power-of-two"),
            ("client.cinder", "shared-user"), ("client.tool", "mon-cannot-blocklist"),
            ("client.nova-tool", "osd-not-pool-restricted")} <= noted
