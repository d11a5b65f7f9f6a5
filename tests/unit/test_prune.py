"""What --prune removes, as tables: (spec, observed state, records) -> actions, refusals."""

from dataclasses import replace

from cephstack.ceph.records import parse_created
from cephstack.keyfiles import FileState, Secret
from cephstack.plan.make import make_plan
from cephstack.plan.state import (
    ClientState,
    ClusterState,
    Created,
    PoolContents,
    PoolState,
    PruneFacts,
    RecordedKeyring,
)
from cephstack.report.views import plan_json, plan_text
from cephstack.spec.catalog import desired_clients
from cephstack.spec.defaults import DEFAULT_SPEC
from cephstack.spec.load import parse_spec

SPEC = parse_spec(DEFAULT_SPEC.replace("/var/openstack/ceph", "/k"))
EMPTY = PoolContents(0, 0, 0)


def pool(name: str, pool_id: int) -> PoolState:
    return PoolState(name, 32, 1, 1, "replicated_rule", "off", 0.0, ("rbd",), 0, 0,
                     pool_id=pool_id, create_time=f"created-{pool_id}")


TOOL_CAPS = {"mon": "profile rbd"}  # what cephstack gave client.tool (state() has it so)


def ours(pools=(), users=(), keyrings=None, **more) -> Created:
    """Records that the facts bear out: each pool with its creation time, each user with
    the caps it has, each keyring a regular file in the keyring directory /k."""
    keyrings = {path: RecordedKeyring(entity, exists, path if exists else "", exists)
                for path, (entity, exists) in (keyrings or {}).items()}
    return Created(pools={n: i for n, i in pools}, users=frozenset(users), keyrings=keyrings,
                   pool_times={n: f"created-{i}" for n, i in pools},
                   user_caps={u: TOOL_CAPS for u in users}, keyring_dir="/k", **more)


def state(*, extra_pools=(), extra_users=(), created=None, prune=None) -> ClusterState:
    """The seed layout converged, plus pools and users the spec does not declare."""
    clients, files = {}, {}
    for entity, client in desired_clients(SPEC).items():
        key = Secret(f"key-of-{entity}")
        clients[entity] = ClientState(entity, client.caps.rendered(), key)
        files[entity] = FileState(SPEC.keyrings.path_for(entity), True, key, 0o600)
    for entity in extra_users:
        clients[entity] = ClientState(entity, {"mon": "profile rbd"}, Secret("k"))
    pools = {n: pool(n, i) for i, n in enumerate(SPEC.pools, start=1)}
    pools.update({n: pool(n, pid) for n, pid in extra_pools})
    return ClusterState("fsid", pools, clients, files, osds_in=1, default_pool_size=1,
                        created=created or Created(), prune=prune)


OURS = ours([("old", 10)], ["client.tool"],
            {"/k/ceph.client.tool.keyring": ("client.tool", True)})
ALL_CLEAR = PruneFacts({"old": EMPTY}, {"client.tool": 0}, True,
                       {"/k/ceph.client.tool.keyring": True})


def removals(plan):
    return [(a.kind, a.address) for a in plan.actions if a.symbol == "-"]


def test_without_prune_only_a_note_counts_them():
    plan = make_plan(SPEC, state(extra_pools=[("old", 10)], extra_users=["client.tool"],
                                 created=OURS))
    assert plan.empty and not plan.refusals
    assert plan.notes == ("3 things cephstack created are no longer declared: apply --prune "
                          "removes them (pool.old, client.tool, keyring "
                          "/k/ceph.client.tool.keyring)",)
    # Candidates are not "unmanaged, left alone": they are cephstack's own.
    assert "old" not in plan.unmanaged_pools and "client.tool" not in plan.unmanaged_clients


def test_with_prune_they_are_removals_last():
    plan = make_plan(SPEC, state(extra_pools=[("old", 10)], extra_users=["client.tool"],
                                 created=OURS, prune=ALL_CLEAR))
    assert removals(plan) == [("remove_pool", "pool.old"), ("remove_client", "client.tool"),
                              ("remove_keyring", "keyring /k/ceph.client.tool.keyring")]
    assert not plan.refusals and not plan.disruptive
    text = plan_text(plan)
    assert "  - pool.old" in text and "Plan: 0 to change, 3 to destroy." in text
    assert [a["symbol"] for a in plan_json(plan)["actions"]] == ["-", "-", "-"]


def test_what_cephstack_did_not_create_is_never_a_candidate():
    hand = state(extra_pools=[("handmade", 11)], extra_users=["client.byhand"],
                 prune=PruneFacts(pool_delete_allowed=True))
    plan = make_plan(SPEC, hand)
    assert plan.empty and not plan.notes and not plan.refusals
    assert plan.unmanaged_pools == ("handmade",) and plan.unmanaged_clients == ("client.byhand",)


def test_a_namesake_made_by_hand_after_a_deletion_is_not_ours():
    # Recorded with id 10; the pool of that name now has id 12: made again by hand.
    s = state(extra_pools=[("old", 12)], created=ours([("old", 10)]),
              prune=PruneFacts(pool_delete_allowed=True))
    plan = make_plan(SPEC, s)
    assert [(a.kind, a.address) for a in plan.actions] == [
        ("forget_record", "record of pool old")]
    assert "old" in plan.unmanaged_pools


def test_declared_things_are_never_removed_even_when_recorded():
    created = ours([("images", 1)], ["client.glance"],
                   {"/k/ceph.client.glance.keyring": ("client.glance", True)})
    plan = make_plan(SPEC, state(created=created, prune=PruneFacts(pool_delete_allowed=True)))
    assert plan.empty and not plan.refusals


def test_a_pool_that_is_not_empty_is_refused_with_its_counts():
    facts = replace(ALL_CLEAR, pool_contents={"old": PoolContents(2, 3, 1)})
    plan = make_plan(SPEC, state(extra_pools=[("old", 10)], extra_users=["client.tool"],
                                 created=OURS, prune=facts))
    assert plan.refusals == (
        "pool.old: cephstack created it and the spec no longer declares it, but it holds "
        "2 image(s), 3 snapshot(s), 1 trash entry; --prune deletes only an empty pool; fix: "
        "move or delete them (or declare the pool again), or apply without --prune",)
    many = replace(ALL_CLEAR, pool_contents={"old": PoolContents(40, 5, 0, True)})
    plan = make_plan(SPEC, state(extra_pools=[("old", 10)], created=OURS, prune=many))
    assert "40 image(s), at least 5 snapshot(s), 0 trash entries" in plan.refusals[0]


def test_pool_deletion_the_monitors_forbid_is_refused_not_switched_on():
    facts = replace(ALL_CLEAR, pool_delete_allowed=False)
    plan = make_plan(SPEC, state(extra_pools=[("old", 10)], created=OURS, prune=facts))
    assert len(plan.refusals) == 1
    assert plan.refusals[0].startswith("pool.old: the monitors do not allow deleting pools "
                                       "(mon_allow_pool_delete is false); fix: `ceph tell "
                                       "mon.* config set mon_allow_pool_delete true`")
    # No pool to delete: the setting does not matter.
    plan = make_plan(SPEC, state(extra_users=["client.tool"], created=OURS, prune=facts))
    assert not plan.refusals


def test_a_user_with_sessions_is_refused_and_removed_once_they_end():
    busy = replace(ALL_CLEAR, sessions={"client.tool": 2})
    plan = make_plan(SPEC, state(extra_users=["client.tool"], created=OURS, prune=busy))
    assert plan.refusals and plan.refusals[0].startswith(
        "client.tool: cephstack created it and the spec no longer declares it, but 2 client "
        "session(s) with the monitors use it now")
    plan = make_plan(SPEC, state(extra_users=["client.tool"], created=OURS, prune=ALL_CLEAR))
    assert ("remove_client", "client.tool") in removals(plan)


def test_sessions_not_read_refuse_rather_than_guess():
    facts = replace(ALL_CLEAR, sessions={}, pool_contents={})
    plan = make_plan(SPEC, state(extra_pools=[("old", 10)], extra_users=["client.tool"],
                                 created=OURS, prune=facts))
    assert plan.refusals == ("pool.old: what it holds was not read; plan --prune again",
                             "client.tool: its sessions were not read; plan --prune again")


def test_the_admin_user_cephstack_connects_as_is_never_removed():
    created = ours(users=["client.admin"])
    s = state(extra_users=["client.admin"], created=created, prune=ALL_CLEAR)
    assert not removals(make_plan(SPEC, s))


def test_a_renamed_user_is_created_and_the_old_one_removed():
    renamed = parse_spec(DEFAULT_SPEC.replace("/var/openstack/ceph", "/k").replace(
        "{user: glance, pool: images}", "{user: glance-v2, pool: images}"))
    created = ours(users=["client.glance"], keyrings={
        "/k/ceph.client.glance.keyring": ("client.glance", True)})
    s = state(created=created, prune=PruneFacts({}, {"client.glance": 0}, True,
                                                {"/k/ceph.client.glance.keyring": True}))
    glance = desired_clients(SPEC)["client.glance"].caps.rendered()
    s = replace(s, created=replace(created, user_caps={"client.glance": glance}))
    plan = make_plan(renamed, s)
    assert [(a.kind, a.address) for a in plan.actions if a.symbol != "~"] == [
        ("create_client", "client.glance-v2"),
        ("write_keyring", "keyring /k/ceph.client.glance-v2.keyring"),
        ("remove_client", "client.glance"),
        ("remove_keyring", "keyring /k/ceph.client.glance.keyring")]


def test_keyring_files_gone_or_replaced_are_forgotten_never_removed():
    created = ours(keyrings={"/k/gone.keyring": ("client.x", False),
                             "/k/replaced.keyring": ("client.y", True)})
    facts = PruneFacts({}, {}, True, {"/k/replaced.keyring": False})
    plan = make_plan(SPEC, state(created=created, prune=facts))
    assert [(a.kind, a.address) for a in plan.actions] == [
        ("forget_record", "record of keyring /k/gone.keyring"),
        ("forget_record", "record of keyring /k/replaced.keyring")]


def test_a_user_record_whose_user_is_gone_is_forgotten():
    plan = make_plan(SPEC, state(created=Created(users=frozenset({"client.old"})),
                                 prune=PruneFacts(pool_delete_allowed=True)))
    assert [(a.kind, a.address) for a in plan.actions] == [
        ("forget_record", "record of user client.old")]
    assert make_plan(SPEC, state(created=Created(users=frozenset({"client.old"})))).empty


def test_records_are_read_back_as_written_and_bad_ones_ignored():
    p = "cephstack/created/spec/a/"
    dump = {f"{p}pools/0": '{"old": {"id": 10, "created": "t"}}',
            f"{p}users/0": '{"client.tool": {"mon": "profile rbd"}}',
            f"{p}keyrings/h1/0": '{"/k/ceph.client.tool.keyring": "client.tool"}',
            f"{p}keyrings/h2/0": '{"/k/other.keyring": "client.z"}',
            f"{p}keyrings/h3/1": '{"/k/lost-its-first-piece": "client.z"}'}
    created = parse_created(dump, "a", host="h1")
    assert created.pools == {"old": 10} and created.pool_times == {"old": "t"}
    assert created.users == frozenset({"client.tool"})
    assert created.user_caps == {"client.tool": {"mon": "profile rbd"}}
    assert list(created.keyrings) == ["/k/ceph.client.tool.keyring"]  # this host's only
    assert created.keyrings["/k/ceph.client.tool.keyring"].entity == "client.tool"
    assert parse_created(None) == Created()
    # a document that does not read back whole is no record at all
    assert parse_created({f"{p}pools/0": '{"old": 1', f"{p}users/0": "not json"},
                         "a") == Created(owner="a")
    assert parse_created(dump, "a", host="h3").keyrings == {}
    # another spec's records are only named, never this spec's
    other = parse_created(dump, "b", host="h1")
    assert other.pools == {} and other.users == frozenset() and other.keyrings == {}
    assert other.others == {"a": ("client.tool", "pool old")}


class _Store:
    """The monitors' config-key store as records.py uses it: dump, set, rm."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.writes = 0

    def mon(self, prefix: str, **args: str) -> object:
        if prefix == "config-key dump":
            return {k: v for k, v in self.data.items() if k.startswith(args["key"])}
        self.writes += 1
        if prefix == "config-key set":
            self.data[args["key"]] = args["val"]
        else:
            del self.data[args["key"]]
        return None

    def concurrently(self, calls):
        return [c() for c in calls]


def test_records_cost_a_few_writes_whatever_their_number_and_read_back(monkeypatch):
    from cephstack.ceph import records

    monkeypatch.setattr(records, "_host", lambda: "h1")
    store = _Store()
    users = {f"client.user{i:04d}": {"mon": "profile rbd"} for i in range(3000)}
    files = {f"/etc/ceph/ceph.client.user{i:04d}.keyring": f"client.user{i:04d}"
             for i in range(3000)}
    records.update_records(store, "a", {"images": records.RecordedPool(1, "t")}, users,
                           files)  # type: ignore[arg-type]
    assert all(len(v) <= records.PIECE for v in store.data.values())
    # pieces, not one write per record (3,000 users with their caps, 3,000 files: 7)
    assert store.writes == len(store.data) <= 8
    created = records.parse_created(store.data, "a", host="h1")
    assert created.pools == {"images": 1} and created.users == frozenset(users)
    assert {p: k.entity for p, k in created.keyrings.items()} == files
    # forgetting most of them shrinks the documents and drops their surplus pieces
    before = store.writes
    records.forget_records(store, "a", [("user", u) for u in list(users)[1:]]  # type: ignore[arg-type]
                           + [("keyring", f) for f in list(files)[1:]] + [("pool", "images")])
    assert store.writes - before <= 8
    created = records.parse_created(store.data, "a", host="h1")
    assert created.pools == {} and created.users == frozenset(["client.user0000"])
    assert list(created.keyrings) == ["/etc/ceph/ceph.client.user0000.keyring"]
    assert sorted(k.rsplit("/", 1)[0] for k in store.data) == [
        "cephstack/created/spec/a/keyrings/h1", "cephstack/created/spec/a/pools",
        "cephstack/created/spec/a/users"]


def test_the_fingerprint_covers_records_and_prune_facts():
    base = state(created=OURS)
    assert base.fingerprint() != state().fingerprint()
    assert replace(base, prune=ALL_CLEAR).fingerprint() != replace(
        base, prune=replace(ALL_CLEAR, sessions={"client.tool": 1})).fingerprint()


# -- records are claims, checked against the facts (issue 18) ------------------------


def doubts(plan) -> list[str]:
    return [n for n in plan.notes if n.startswith("a record of what cephstack created")]


def test_a_record_naming_a_user_cephstack_never_creates_is_not_acted_on():
    created = ours(users=["client.bootstrap-osd", "client.bootstrap-rbd", "client.admin",
                          "osd.0", "mgr.x"])
    s = state(extra_users=["client.bootstrap-osd", "client.bootstrap-rbd", "client.admin",
                           "osd.0", "mgr.x"], created=created, prune=ALL_CLEAR)
    plan = make_plan(SPEC, s)
    assert not removals(plan)
    assert len(doubts(plan)) == 5
    assert any("client.bootstrap-osd is not a user cephstack creates" in d
               for d in doubts(plan))


def test_a_user_whose_caps_changed_since_cephstack_made_it_is_not_removed():
    s = state(extra_users=["client.tool"], created=replace(
        OURS, user_caps={"client.tool": {"mon": "allow r"}}), prune=ALL_CLEAR)
    plan = make_plan(SPEC, s)
    assert ("remove_client", "client.tool") not in removals(plan)
    assert any("client.tool's caps are no longer the ones cephstack gave it" in d
               for d in doubts(plan))
    # no caps on record (a record of an older cephstack, or edited): not believed either
    s = replace(s, created=replace(OURS, user_caps={}))
    assert ("remove_client", "client.tool") not in removals(make_plan(SPEC, s))


def test_a_pool_whose_creation_time_differs_from_the_record_is_not_removed():
    s = state(extra_pools=[("old", 10)], created=replace(OURS, pool_times={"old": "other"}),
              prune=ALL_CLEAR)
    plan = make_plan(SPEC, s)
    assert ("remove_pool", "pool.old") not in removals(plan)
    assert any("not the recorded creation time" in d for d in doubts(plan))


def test_keyring_records_outside_the_directory_or_through_a_link_are_not_acted_on():
    keyrings = {
        "/etc/ceph/ceph.client.admin.keyring": RecordedKeyring(
            "client.admin", True, "/etc/ceph/ceph.client.admin.keyring", True),
        "/elsewhere/ceph.client.tool.keyring": RecordedKeyring(
            "client.tool", True, "/elsewhere/ceph.client.tool.keyring", True),
        "/k/link.keyring": RecordedKeyring("client.tool", True, "/secret/file", False),
        "/k/sub/x.keyring": RecordedKeyring("client.tool", True, "/k/sub/x.keyring", True)}
    facts = replace(ALL_CLEAR, keyrings_held=dict.fromkeys(keyrings, True))
    plan = make_plan(SPEC, state(created=replace(OURS, keyrings=keyrings), prune=facts))
    assert not [r for r in removals(plan) if r[0] == "remove_keyring"]
    assert len([d for d in doubts(plan) if "keyring directory" in d]) == 4


def test_the_declared_directory_named_through_a_link_is_still_declared():
    # The records name /k through another path (a symlinked parent): same real files.
    keyrings = {f"/via-link/{path.rsplit('/', 1)[1]}": RecordedKeyring(
        entity, True, path, True) for entity, path in
        ((e, SPEC.keyrings.path_for(e)) for e in desired_clients(SPEC))}
    facts = replace(ALL_CLEAR, keyrings_held=dict.fromkeys(keyrings, True))
    plan = make_plan(SPEC, state(created=replace(OURS, keyrings=keyrings), prune=facts))
    assert not [r for r in removals(plan) if r[0] == "remove_keyring"]


def test_a_pool_holding_objects_in_a_namespace_or_plain_objects_is_refused():
    facts = replace(ALL_CLEAR, pool_contents={"old": PoolContents(
        0, 0, 0, objects=3, namespaces=("", "tenant1"))})
    plan = make_plan(SPEC, state(extra_pools=[("old", 10)], extra_users=["client.tool"],
                                 created=OURS, prune=facts))
    assert "3 RADOS object(s) (in the default namespace, namespace tenant1)" in \
        plan.refusals[0]
    assert len(plan.refusals) == 1  # apply refuses the whole plan: the user stays too


def test_records_from_before_records_were_per_spec_are_never_pruned():
    created = replace(OURS, pools={}, users=frozenset(), keyrings={},
                      others={"": ("client.tool", "pool old")})
    plan = make_plan(SPEC, state(extra_pools=[("old", 10)], extra_users=["client.tool"],
                                 created=created, prune=ALL_CLEAR))
    assert not removals(plan)
    assert any("2 record(s) from before records were kept per spec (client.tool, pool old)"
               in n and "cephstack records adopt" in n for n in plan.notes)


def test_hostile_records_never_crash_and_never_name_what_is_not_ours():
    """A fuzzer of records: documents of every shape a hand or a tool could leave in the
    config-key store parse without error, and a plan over them removes only what the facts
    bear out (here: nothing, since no fact matches any of them; a record of something
    that does not exist may only be forgotten)."""
    import json
    import random

    rng = random.Random(18)
    values = [None, 1, -1, 2**70, "x", "", [], {}, ["client.admin"], {"a": 1},
              {"id": "10"}, {"id": 10, "created": 5}, "\x1b[31m", "../../etc/shadow",
              {"mon": 1}, {"client.bootstrap-osd": {"mon": "allow *"}}, [1, 2], True]
    docs = ["pools", "users", "keyrings/h1", "spec/a/pools", "spec/a/users",
            "spec/a/keyrings/h1", "spec/../pools", "spec/a/b/pools", "spec//pools"]
    for _ in range(300):
        dump = {}
        for doc in rng.sample(docs, rng.randint(1, len(docs))):
            value = {rng.choice(["old", "images", "client.tool", "/k/x.keyring", "\x00"]):
                     rng.choice(values) for _ in range(rng.randint(0, 3))}
            text = json.dumps(rng.choice([value, rng.choice(values)]))
            if rng.random() < 0.2:
                text = text[: rng.randint(0, len(text))]  # a piece cut short
            dump[f"cephstack/created/{doc}/{rng.choice([0, 0, 1])}"] = text
        created = parse_created(dump, "a", host="h1")
        plan = make_plan(SPEC, state(created=created, prune=ALL_CLEAR))
        removed = [r for r in removals(plan) if r[0] != "forget_record"]
        assert not removed, (dump, removed)
