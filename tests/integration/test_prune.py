"""apply --prune against a real sandbox: what cephstack created and the spec dropped is
shown, then removed only with the flag, only when empty or unused, never what it did not
create. The tests run in order on one cluster (each builds on the one before)."""

from __future__ import annotations

import contextlib
import json
import socket

import pytest

from cephstack.ceph.adapter import CephConnection
from cephstack.spec.defaults import DEFAULT_SPEC
from cephstack.spec.load import load_spec

pytestmark = pytest.mark.slow

EXTRA = """
  retired: {pg_num: 8}
  full:    {pg_num: 8}
"""
TOOL = 'clients:\n  tool: {caps: {mon: "profile rbd", osd: "profile rbd pool=retired"}}\n'
NOTE = "cephstack created are no longer declared: apply --prune removes them"


def _spec(cluster, *, extra_pools: bool, tool: bool, glance_user: str = "glance") -> str:
    text = DEFAULT_SPEC
    if extra_pools:
        text = text.replace("  vm:      {pg_num: 32}              # Nova guest disks\n",
                            "  vm:      {pg_num: 32}              # Nova guest disks\n" + EXTRA)
    if tool:
        text = text.replace("clients: {}\n", TOOL)
    text = text.replace("{user: glance, pool: images}", f"{{user: {glance_user}, pool: images}}")
    text += f"\nrender: {{directory: {cluster.workdir / 'out'}}}\n"
    return str(cluster.write_spec(text=text))


def _records(conn: CephConnection) -> dict[str, str]:
    return conn.mon("config-key dump", key="cephstack/created/") or {}


def _pools(conn: CephConnection) -> set[str]:
    return {p["pool_name"] for p in conn.mon("osd pool ls", detail="detail")}


def _users(conn: CephConnection) -> set[str]:
    return {e["entity"] for e in conn.mon("auth ls")["auth_dump"]}


@contextlib.contextmanager
def _session(cluster, user: str):
    """A client connected as `user` (its keyring written by apply), as a service is."""
    keyring = cluster.workdir / "keys" / f"ceph.client.{user}.keyring"
    with cluster.connect_as(f"client.{user}", str(keyring)) as conn:
        yield conn


@pytest.fixture(scope="module")
def first(cluster):
    """The seed layout plus two pools and a user; a pool and a user made by hand."""
    spec = _spec(cluster, extra_pools=True, tool=True)
    applied = cluster.cli("apply", "-f", spec, "--yes")
    assert applied.returncode == 0, applied.stderr
    with cluster.admin() as conn:
        conn.mon("osd pool create", pool="handmade", pg_num=8, pgp_num=8)
        conn.mon("auth get-or-create", entity="client.byhand", caps=["mon", "allow r"])
        conn.rbd("create", "full", "kept", 1 << 20)  # an image keeps pool "full"
    rendered = cluster.cli("render", "-f", spec)
    assert rendered.returncode == 0, rendered.stderr
    return spec


def test_apply_records_what_it_creates_without_keys(cluster, first):
    with cluster.admin() as conn:
        records = _records(conn)
        pool_ids = {p["pool_name"]: p["pool_id"]
                    for p in conn.mon("osd pool ls", detail="detail")}
    host = socket.gethostname()
    mine = f"cephstack/created/spec/{load_spec(first).records_owner}/"  # this spec's own
    assert sorted(records) == [f"{mine}{doc}/0" for doc in (f"keyrings/{host}", "pools",
                                                            "users")]
    pools = json.loads(records[f"{mine}pools/0"])
    assert {n: p["id"] for n, p in pools.items()} == {n: pool_ids[n] for n in (
        "images", "volume", "backups", "vm", "retired", "full")}
    users = json.loads(records[f"{mine}users/0"])
    assert set(users) == {"client.glance", "client.cinder-volume", "client.cinder-backup",
                          "client.nova", "client.tool"}
    assert users["client.tool"] == {"mon": "profile rbd", "osd": "profile rbd pool=retired"}
    keyrings = json.loads(records[f"{mine}keyrings/{host}/0"])
    assert set(keyrings.values()) == set(users)
    keys = cluster.keys()
    assert not any(key in value for key in keys for value in records.values())


def test_without_prune_the_plan_only_notes_them(cluster, first):
    dropped = _spec(cluster, extra_pools=False, tool=False)
    plan = cluster.cli("plan", "-f", dropped, "--detailed-exitcode")
    assert plan.returncode == 0, plan.stdout + plan.stderr  # nothing to do without --prune
    assert f"4 things {NOTE} (pool.full, pool.retired, client.tool, keyring " in plan.stdout
    assert "- pool." not in plan.stdout
    unmanaged = plan.stdout.split("left alone (unmanaged):")[1].split("\n\n")[0]
    assert "handmade" in unmanaged and "client.byhand" in unmanaged
    assert "retired" not in unmanaged and "client.tool" not in unmanaged


def test_a_pool_holding_an_image_is_refused_with_its_counts(cluster, first):
    dropped = _spec(cluster, extra_pools=False, tool=False)
    plan = cluster.cli("plan", "-f", dropped, "--prune")
    assert plan.returncode == 1
    assert ("Refused: pool.full: cephstack created it and the spec no longer declares it, "
            "but it holds 1 image(s), 0 snapshot(s), 0 trash entries") in plan.stdout
    assert "  - pool.retired" in plan.stdout and "  - client.tool" in plan.stdout
    applied = cluster.cli("apply", "-f", dropped, "--prune", "--yes")
    assert applied.returncode == 1
    with cluster.admin() as conn:  # a refused plan removes nothing
        assert {"retired", "full"} <= _pools(conn)
        assert "client.tool" in _users(conn)
        conn.rbd("remove", "full", "kept")


def test_a_user_with_a_live_session_is_refused(cluster, first):
    dropped = _spec(cluster, extra_pools=False, tool=False)
    with _session(cluster, "tool"):
        plan = cluster.cli("plan", "-f", dropped, "--prune", "--output", "json")
        assert plan.returncode == 1
        refusals = json.loads(plan.stdout)["refusals"]
        assert any(r.startswith("client.tool: cephstack created it") and "1 client session"
                   in r for r in refusals), refusals
        assert cluster.cli("apply", "-f", dropped, "--prune", "--yes").returncode == 1
    with cluster.admin() as conn:
        assert "client.tool" in _users(conn)


def test_prune_removes_them_once_empty_and_unused_and_nothing_else(cluster, first):
    dropped = _spec(cluster, extra_pools=False, tool=False)
    plan = cluster.cli("plan", "-f", dropped, "--prune", "--output", "json")
    assert plan.returncode == 0, plan.stdout
    removals = {(a["kind"], a["address"]) for a in json.loads(plan.stdout)["actions"]
                if a["symbol"] == "-"}
    keyring = cluster.workdir / "keys" / "ceph.client.tool.keyring"
    assert removals == {("remove_pool", "pool.full"), ("remove_pool", "pool.retired"),
                        ("remove_client", "client.tool"),
                        ("remove_keyring", f"keyring {keyring}")}
    applied = cluster.cli("apply", "-f", dropped, "--prune", "--yes")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "Plan: 0 to change, 4 to destroy." in applied.stdout
    with cluster.admin() as conn:
        pools, users, records = _pools(conn), _users(conn), _records(conn)
    assert not {"full", "retired"} & pools and "client.tool" not in users
    assert not keyring.exists()
    assert not any(k.endswith(("/full", "/retired", "/client.tool")) or "tool.keyring" in k
                   for k in records)
    # Never what cephstack did not create, declared or not.
    assert "handmade" in pools and "client.byhand" in users
    assert {"images", "volume", "backups", "vm"} <= pools


def test_after_a_prune_apply_says_no_changes(cluster, first):
    dropped = _spec(cluster, extra_pools=False, tool=False)
    again = cluster.cli("apply", "-f", dropped, "--prune", "--yes")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "No changes: the cluster matches the spec." in again.stdout
    assert NOTE not in again.stdout
    assert cluster.cli("plan", "-f", dropped, "--detailed-exitcode").returncode == 0


def test_a_renamed_user_is_created_switched_to_then_removed_once_unused(cluster, first):
    renamed = _spec(cluster, extra_pools=False, tool=False, glance_user="glance-v2")
    out = cluster.workdir / "out"
    applied = cluster.cli("apply", "-f", renamed, "--yes")  # no --prune: the old user stays
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert f"2 things {NOTE} (client.glance, keyring " in applied.stdout
    glance_conf = (out / "controller" / "fragments" / "glance-api.conf").read_text()
    assert "rbd_store_user = glance-v2" in glance_conf
    assert not list(out.rglob("ceph.client.glance.keyring"))  # the bundle switched
    with cluster.admin() as conn:
        assert {"client.glance", "client.glance-v2"} <= _users(conn)
    with _session(cluster, "glance"):  # a glance-api not yet moved to its new user
        refused = cluster.cli("apply", "-f", renamed, "--prune", "--yes")
        assert refused.returncode == 1
        assert "Refused: client.glance: cephstack created it" in refused.stdout
    pruned = cluster.cli("apply", "-f", renamed, "--prune", "--yes")
    assert pruned.returncode == 0, pruned.stdout + pruned.stderr
    with cluster.admin() as conn:
        users = _users(conn)
    assert "client.glance" not in users and "client.glance-v2" in users
    assert not (cluster.workdir / "keys" / "ceph.client.glance.keyring").exists()
    with _session(cluster, "glance-v2") as conn, conn.ioctx("images") as ioctx:
        list(ioctx.target.list_objects())  # the new user works


def test_pool_deletion_disabled_by_the_monitors_is_refused_with_the_fix(cluster, first):
    spec = _spec(cluster, extra_pools=True, tool=False, glance_user="glance-v2")
    assert cluster.cli("apply", "-f", spec, "--yes").returncode == 0
    dropped = _spec(cluster, extra_pools=False, tool=False, glance_user="glance-v2")
    with cluster.admin() as conn:
        mon = conn.mon("mon dump")["mons"][0]["name"]
        _tell(conn, mon, "false")
        try:
            plan = cluster.cli("plan", "-f", dropped, "--prune")
        finally:
            _tell(conn, mon, "true")
    assert plan.returncode == 1
    assert ("Refused: pool.full, pool.retired: the monitors do not allow deleting pools "
            "(mon_allow_pool_delete is false)") in plan.stdout
    assert "ceph tell mon.* config set mon_allow_pool_delete true" in plan.stdout
    # A plan saved with --prune removes when applied; one saved without it never does.
    plain, pruning = cluster.workdir / "plain.json", cluster.workdir / "pruning.json"
    assert cluster.cli("plan", "-f", dropped, "--out", str(plain)).returncode == 0
    assert cluster.cli("plan", "-f", dropped, "--prune", "--out", str(pruning)).returncode == 0
    refused = cluster.cli("apply", "--plan", str(plain), "--prune")
    assert refused.returncode == 1 and "was saved without --prune" in refused.stderr
    applied = cluster.cli("apply", "--plan", str(pruning))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    with cluster.admin() as conn:
        assert not {"full", "retired"} & _pools(conn)


def _tell(conn: CephConnection, mon: str, value: str) -> None:
    """`ceph tell mon.<mon> injectargs --mon_allow_pool_delete=<value>`: the running value
    (the sandbox's ceph.conf sets it, which the config database would not override)."""
    cmd = json.dumps({"prefix": "injectargs",
                      "injected_args": [f"--mon_allow_pool_delete={value}"]})
    ret, _, text = conn._cluster.mon_command(cmd, b"", target=mon)
    assert ret == 0, text
