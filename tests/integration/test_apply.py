"""apply against a real sandbox cluster: the default spec, re-apply, edits, failures."""

from __future__ import annotations

import json
import os
import re
import stat
import time

import pytest
import rados

from cephstack.ceph.observe import observe
from cephstack.keyfiles import keyring_key
from cephstack.spec.caps import Caps
from cephstack.spec.catalog import desired_clients
from cephstack.spec.defaults import DEFAULT_SPEC
from cephstack.spec.load import load_spec

pytestmark = pytest.mark.slow

SEED_POOLS = ("images", "volume", "backups", "vm")
SERVICE_USERS = ("glance", "cinder-volume", "cinder-backup", "nova")


@pytest.fixture(scope="module")
def applied(cluster):
    spec = cluster.write_spec()
    first = cluster.cli("apply", "-f", str(spec), "--yes")
    assert first.returncode == 0, first.stderr
    return spec, first


def test_default_spec_creates_the_seed_layout(cluster, applied):
    spec_path, first = applied
    assert "Plan: 4 pools to create, 4 clients to create" in first.stdout
    with cluster.admin() as conn:
        pools = {p["pool_name"]: p for p in conn.mon("osd pool ls", detail="detail")}
        for name in SEED_POOLS:
            assert pools[name]["pg_num"] == 32
            assert list(pools[name]["application_metadata"]) == ["rbd"]
            with conn.ioctx(name) as ioctx:  # librbd's pool validation completed
                assert ioctx.read("rbd_info") == b"overwrite validated"
        auth = {e["entity"]: e for e in conn.mon("auth ls")["auth_dump"]}
    wanted = desired_clients(load_spec(spec_path))
    for user in SERVICE_USERS:
        entity = f"client.{user}"
        assert Caps.parse(auth[entity]["caps"]) == wanted[entity].caps
        assert auth[entity]["caps"] == wanted[entity].caps.rendered()  # exactly, as sent


def test_keyrings_are_private_match_the_cluster_and_work(cluster, applied):
    with cluster.admin() as conn:
        auth = {e["entity"]: e["key"] for e in conn.mon("auth ls")["auth_dump"]}
    own_pool = {"glance": "images", "cinder-volume": "volume", "cinder-backup": "backups",
                "nova": "vm"}
    for user in SERVICE_USERS:
        path = cluster.workdir / "keys" / f"ceph.client.{user}.keyring"
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert keyring_key(path.read_text(), f"client.{user}").reveal() == auth[f"client.{user}"]
        with (cluster.connect_as(f"client.{user}", str(path)) as conn,
              conn.ioctx(own_pool[user]) as ioctx):
            list(ioctx.list_objects())  # reading its own pool works with its key


def test_reapply_changes_nothing(cluster, applied):
    spec_path, _ = applied
    again = cluster.cli("apply", "-f", str(spec_path), "--yes")
    assert again.returncode == 0
    assert "No changes: the cluster matches the spec." in again.stdout
    assert cluster.cli("plan", "-f", str(spec_path), "--detailed-exitcode").returncode == 0


def test_a_cluster_from_the_default_spec_audits_clean(cluster, applied):
    with_spec = cluster.cli("audit", "-f", str(applied[0]))
    assert with_spec.returncode == 0, with_spec.stdout
    assert "Audit clean: no findings." in with_spec.stdout
    by_names = cluster.cli("audit", "--conf", str(cluster.box.conf), "--keyring",
                           str(cluster.box.admin_keyring), "--keyring-dir",
                           str(cluster.workdir / "keys"))
    assert by_names.returncode == 0, by_names.stdout


def test_observe_costs_a_fixed_number_of_mon_commands(cluster, applied):
    spec = load_spec(applied[0])

    def cost(conn, *args, **kwargs) -> int:
        """Seven read-only commands and one `config diff` per monitor (one here); one more
        (`pg dump pgs_brief`) only while the PG summary shows PGs not active, or lags
        behind new pools."""
        before = conn.commands_sent
        state = observe(conn, *args, **kwargs)
        per_pool = state.health is not None and state.health.pool_pg_states is not None
        return conn.commands_sent - before - per_pool

    with cluster.admin() as conn:
        paths = {e: spec.keyrings.path_for(e) for e in desired_clients(spec)}
        assert cost(conn, {}) == cost(conn, paths, validate=list(spec.pools)) == 7 + 1


def test_plan_json(cluster, applied):
    out = cluster.cli("plan", "-f", str(applied[0]), "--output", "json")
    data = json.loads(out.stdout)
    assert data["format_version"] == "1" and data["changes"] is False
    assert data["actions"] == []
    assert "device_health_metrics" in data["unmanaged"]["pools"]


def test_spec_edit_plans_exactly_the_edit_and_keeps_keys(cluster, applied):
    spec_path, _ = applied
    keys_before = {e: k for e, k in zip(SERVICE_USERS, _keys(cluster, SERVICE_USERS),
                                        strict=True)}
    text = spec_path.read_text().replace(
        "vm:      {pg_num: 32}", "vm:      {pg_num: 32}\n  volume-ssd: {pg_num: 8}").replace(
        "pools: [volume]", "pools: [volume, volume-ssd]")
    edited = cluster.write_spec("edited.yaml", text)
    plan = cluster.cli("plan", "-f", str(edited), "--output", "json", "--detailed-exitcode")
    assert plan.returncode == 2
    actions = [(a["symbol"], a["address"]) for a in json.loads(plan.stdout)["actions"]]
    # A new Cinder pool gets the default trash purge schedule (plan/trash.py).
    assert actions == [("+", "pool.volume-ssd"), ("~", "client.cinder-volume"),
                       ("~", "trash_purge.volume-ssd")]
    done = cluster.cli("apply", "-f", str(edited), "--yes")
    assert done.returncode == 0, done.stderr
    assert dict(zip(SERVICE_USERS, _keys(cluster, SERVICE_USERS), strict=True)) == keys_before
    assert cluster.cli("plan", "-f", str(edited), "--detailed-exitcode").returncode == 0


def test_removing_access_is_disruptive_and_needs_the_flag(cluster, applied):
    spec_path, _ = applied  # the original spec no longer grants cinder-volume volume-ssd
    refused = cluster.cli("apply", "-f", str(spec_path), "--yes")
    assert refused.returncode == 1
    assert "disruptive" in refused.stderr and "volume-ssd" in refused.stderr
    with cluster.admin() as conn:
        caps = {e["entity"]: e["caps"] for e in conn.mon("auth ls")["auth_dump"]}
    assert "volume-ssd" in caps["client.cinder-volume"]["osd"]  # nothing was applied
    allowed = cluster.cli("apply", "-f", str(spec_path), "--yes", "--allow-disruptive")
    assert allowed.returncode == 0, allowed.stderr
    assert cluster.cli("plan", "-f", str(spec_path), "--detailed-exitcode").returncode == 0


def test_stale_keyring_is_rewritten_and_loose_mode_fixed(cluster, applied):
    spec_path, _ = applied
    keys = cluster.workdir / "keys"
    (keys / "ceph.client.nova.keyring").write_text(
        "[client.nova]\n\tkey = AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==\n")
    os.chmod(keys / "ceph.client.glance.keyring", 0o644)
    plan = cluster.cli("plan", "-f", str(spec_path))
    assert "~ keyring" in plan.stdout and "key differs from the cluster's" in plan.stdout
    assert "mode: 0644 -> 0600" in plan.stdout
    assert cluster.cli("apply", "-f", str(spec_path), "--yes").returncode == 0
    assert stat.S_IMODE(os.stat(keys / "ceph.client.glance.keyring").st_mode) == 0o600
    [nova_key] = _keys(cluster, ["nova"])
    assert keyring_key((keys / "ceph.client.nova.keyring").read_text(),
                       "client.nova").reveal() == nova_key


def test_seed_caps_as_explicit_clients_apply_cleanly(cluster, applied):
    seed = """
cluster: {conf: /etc/ceph/ceph.conf, keyring: /etc/ceph/ceph.client.admin.keyring}
pools: {images: {pg_num: 32}, volume: {pg_num: 32}, backups: {pg_num: 32}, vm: {pg_num: 32}}
clients:
  seed-glance: {caps: {mon: "allow r", osd: "allow rwx pool=images"}}
  seed-cinder-volume: {caps: {mon: "allow r", osd: "allow rwx pool=volume"}}
  seed-cinder-backup:
    caps: {mon: "allow r", osd: "allow rwx pool=volume, allow rwx pool=backups"}
  seed-nova: {caps: {mon: "allow r", osd: "allow rwx pool=vm"}}
keyrings: {directory: /var/openstack/ceph}
"""
    path = cluster.write_spec("seed.yaml", seed)
    done = cluster.cli("apply", "-f", str(path), "--yes")
    assert done.returncode == 0, done.stderr
    assert "Plan: 4 clients to create, 4 keyrings to create" in done.stdout
    with cluster.admin() as conn:
        caps = {e["entity"]: e["caps"] for e in conn.mon("auth ls")["auth_dump"]}
    assert caps["client.seed-cinder-backup"] == {
        "mon": "allow r", "osd": "allow rwx pool=volume, allow rwx pool=backups"}
    assert cluster.cli("plan", "-f", str(path), "--detailed-exitcode").returncode == 0


def test_existing_pool_without_rbd_application_is_initialised(cluster, applied):
    with cluster.admin() as conn:
        conn.mon("osd pool create", pool="handmade", pg_num=8, autoscale_mode="off")
    path = cluster.write_spec("handmade.yaml", "cluster: {conf: /etc/ceph/ceph.conf, keyring: "
                              "/etc/ceph/ceph.client.admin.keyring}\n"
                              "pools: {handmade: {pg_num: 8}}\n")
    plan = cluster.cli("plan", "-f", str(path))
    assert "~ pool.handmade" in plan.stdout and "application: (none) -> " in plan.stdout
    assert cluster.cli("apply", "-f", str(path), "--yes").returncode == 0
    with cluster.admin() as conn:
        [pool] = [p for p in conn.mon("osd pool ls", detail="detail")
                  if p["pool_name"] == "handmade"]
        assert list(pool["application_metadata"]) == ["rbd"]
        with conn.ioctx("handmade") as ioctx:
            assert ioctx.read("rbd_info") == b"overwrite validated"
    assert cluster.cli("plan", "-f", str(path), "--detailed-exitcode").returncode == 0


def test_pg_budget_refusal_creates_nothing(cluster, applied):
    path = cluster.write_spec("huge.yaml", "cluster: {conf: /etc/ceph/ceph.conf, keyring: "
                              "/etc/ceph/ceph.client.admin.keyring}\n"
                              "pools: {huge-a: {pg_num: 512}, huge-b: {pg_num: 256}}\n")
    out = cluster.cli("apply", "-f", str(path), "--yes")
    assert out.returncode == 1
    assert "placement-group budget exceeded" in out.stdout + out.stderr
    with cluster.admin() as conn:
        assert not {"huge-a", "huge-b"} & set(conn.mon("osd pool ls"))


def test_failure_mid_apply_keeps_what_was_done_and_rerun_converges(cluster, applied):
    # The monitor rejects this cap string; the new pool in the same round is still created.
    bad = """
cluster: {conf: /etc/ceph/ceph.conf, keyring: /etc/ceph/ceph.client.admin.keyring}
pools: {scratch: {pg_num: 8}}
clients:
  odd: {caps: {osd: "allow rwx pool=scratch nonsense-word"}}
keyrings: {directory: /var/openstack/ceph}
"""
    path = cluster.write_spec("bad.yaml", bad.replace("clients:\n", "clients:\n  fine: "
                                                      "{caps: {mon: 'allow r'}}\n"))
    out = cluster.cli("apply", "-f", str(path), "--yes")
    assert out.returncode == 1
    assert "the monitor refuses the caps of client.odd: osd capability parse failed" in out.stderr
    with cluster.admin() as conn:
        assert "scratch" in conn.mon("osd pool ls")
        entities = {e["entity"] for e in conn.mon("auth ls")["auth_dump"]}
    # The user whose caps the monitor took was imported; the refused one was not.
    assert "client.fine" in entities and "client.odd" not in entities
    assert "client.cephstack-caps-check" not in entities  # the check changes nothing
    fixed = cluster.write_spec("bad.yaml", bad.replace(" nonsense-word", ""))
    assert cluster.cli("apply", "-f", str(fixed), "--yes").returncode == 0
    assert cluster.cli("plan", "-f", str(fixed), "--detailed-exitcode").returncode == 0


def test_spec_errors_exit_2_before_contacting_the_cluster(cluster):
    path = cluster.write_spec("broken.yaml", "pools:\n  images: {pg_num: lots}\n")
    out = cluster.cli("plan", "-f", str(path))
    assert out.returncode == 2
    assert f"{path}:2: pools.images.pg_num: expected an integer" in out.stderr


def test_insufficient_privileges_name_the_refused_command(cluster, applied):
    keyring = cluster.workdir / "keys" / "ceph.client.glance.keyring"
    # A spec that manages client.glance is refused when connecting as it: use one that
    # does not, so the cluster's refusal is what is seen.
    spec = cluster.write_spec("no-glance.yaml", DEFAULT_SPEC.replace(
        "  glance:        {user: glance, pool: images}           # chunk_size_mib: 8 "
        "(Glance default)\n", ""))
    refused = cluster.cli("plan", "-f", str(applied[0]), "--id", "client.glance",
                          "--keyring", str(keyring))
    assert refused.returncode == 2 and "cephstack never manages it" in refused.stderr
    out = cluster.cli("plan", "-f", str(spec), "--id", "client.glance", "--keyring",
                      str(keyring))
    assert out.returncode == 1
    assert "'auth ls' failed: errno 13" in out.stderr
    assert "client.glance lacks the caps" in out.stderr


def test_unreachable_cluster_exits_3_within_the_timeout(cluster, tmp_path):
    from cephstack.sandbox.cluster import free_port

    conf = tmp_path / "ceph.conf"
    conf.write_text(f"[global]\nmon host = v2:127.0.0.1:{free_port()}\n")
    path = cluster.write_spec("nowhere.yaml", f"cluster: {{conf: {conf}, keyring: "
                              f"{cluster.box.admin_keyring}, connect_timeout: 2}}\n")
    out = cluster.cli("plan", "-f", str(path), check_keys=False)
    assert out.returncode == 3
    assert "cannot reach the cluster" in out.stderr


def _keys(cluster, users):
    with cluster.admin() as conn:
        auth = {e["entity"]: e["key"] for e in conn.mon("auth ls")["auth_dump"]}
    return [auth[f"client.{u}"] for u in users]


def test_the_bindings_are_only_imported_by_the_ceph_package():
    import pathlib

    root = pathlib.Path(__file__).parents[2] / "cephstack"
    binding = re.compile(r"^\s*(import|from)\s+(rados|rbd)\b", re.MULTILINE)
    importers = {p.relative_to(root).as_posix() for p in root.rglob("*.py")
                 if binding.search(p.read_text())}
    assert "ceph/adapter.py" in importers
    assert all(i.startswith("ceph/") for i in importers), importers
    assert rados  # the bindings import in this environment


def test_saved_plan_applies_only_to_the_state_it_was_made_for(cluster, applied):
    spec = cluster.write_spec("saved.yaml", applied[0].read_text().replace(
        "vm:      {pg_num: 32}", "vm:      {pg_num: 32}\n  saved-pool: {pg_num: 8}"))
    saved = cluster.workdir / "saved.plan.json"
    assert cluster.cli("plan", "-f", str(spec), "--out", str(saved)).returncode == 0
    with cluster.admin() as conn:  # the cluster changes after the plan was made
        conn.mon("auth get-or-create", entity="client.someone-else", caps=["mon", "allow r"])
    stale = cluster.cli("apply", "--plan", str(saved))
    assert stale.returncode == 1 and "the cluster changed since" in stale.stderr
    with cluster.admin() as conn:
        assert "saved-pool" not in conn.mon("osd pool ls")
    again = cluster.cli("plan", "-f", str(spec), "--out", str(saved))
    assert again.returncode == 1 and "use --force" in again.stderr  # never overwrites silently
    assert cluster.cli("plan", "-f", str(spec), "--out", str(saved), "--force").returncode == 0
    spec.write_text(spec.read_text() + "\n# edited\n")
    edited = cluster.cli("apply", "--plan", str(saved))
    assert edited.returncode == 1 and "changed since" in edited.stderr
    assert cluster.cli("plan", "-f", str(spec), "--out", str(saved), "--force").returncode == 0
    fresh = cluster.cli("apply", "--plan", str(saved))  # no prompt: it was reviewed
    assert fresh.returncode == 0, fresh.stderr
    with cluster.admin() as conn:
        assert "saved-pool" in conn.mon("osd pool ls")
    assert "AQ" not in saved.read_text()


# -- cost in monitor commits, not in entities -------------------------------------------


def _commits(cluster) -> dict[str, int]:
    """The monitor's own counters: osdmap epochs and auth commits (`ceph report`)."""
    with cluster.admin() as conn:
        report = conn.mon("report")
    return {"osdmap": report["osdmap_last_committed"], "auth": report["auth"]["last_committed"]}


def _clients_spec(users: dict[str, str], pools: str = "{}") -> str:
    lines = [f"  {u}: {{caps: {{mon: 'profile rbd', osd: '{osd}'}}}}" for u, osd in users.items()]
    return ("cluster: {conf: /etc/ceph/ceph.conf, keyring: /etc/ceph/ceph.client.admin.keyring}\n"
            f"pools: {pools}\nclients:\n" + "\n".join(lines) +
            "\nkeyrings: {directory: /var/openstack/ceph}\n")


def test_any_number_of_new_users_costs_one_auth_commit(cluster, applied):
    users = {f"many{i:02d}": f"profile rbd pool=p{i % 3}" for i in range(40)}
    path = cluster.write_spec("many.yaml", _clients_spec(users))
    before = _commits(cluster)
    done = cluster.cli("apply", "-f", str(path), "--yes")
    after = _commits(cluster)
    assert done.returncode == 0, done.stderr
    assert after["auth"] - before["auth"] == 1  # one `auth import`, not 40 commits
    assert after["osdmap"] == before["osdmap"]
    with cluster.admin() as conn:
        auth = {e["entity"]: e for e in conn.mon("auth ls")["auth_dump"]}
    for user in users:
        entity = f"client.{user}"
        assert auth[entity]["caps"] == {"mon": "profile rbd", "osd": users[user]}
        keyring = cluster.workdir / "keys" / f"ceph.{entity}.keyring"
        assert keyring_key(keyring.read_text(), entity).reveal() == auth[entity]["key"]
    assert len({auth[f"client.{u}"]["key"] for u in users}) == len(users)
    with cluster.connect_as("client.many07", str(cluster.workdir / "keys" /
                                                  "ceph.client.many07.keyring")) as conn:
        assert conn.mon("osd pool ls") is not None  # Ceph takes the key cephstack made


def test_caps_changes_and_new_users_cost_one_auth_commit_and_keep_keys(cluster, applied):
    first = {f"keep{i}": "profile rbd pool=a" for i in range(4)}
    path = cluster.write_spec("keep.yaml", _clients_spec(first))
    assert cluster.cli("apply", "-f", str(path), "--yes").returncode == 0
    keys_before = dict(zip(first, _keys(cluster, first), strict=True))
    changed = {**first, "keep1": "profile rbd pool=b", "keep2": "profile rbd pool=a, "
               "profile rbd-read-only pool=b", "keep9": "profile rbd pool=c"}
    path = cluster.write_spec("keep.yaml", _clients_spec(changed))
    before = _commits(cluster)
    done = cluster.cli("apply", "-f", str(path), "--yes", "--allow-disruptive")
    after = _commits(cluster)
    assert done.returncode == 0, done.stderr
    assert after["auth"] - before["auth"] == 1
    assert dict(zip(first, _keys(cluster, first), strict=True)) == keys_before  # unchanged
    with cluster.admin() as conn:
        caps = {e["entity"]: e["caps"] for e in conn.mon("auth ls")["auth_dump"]}
    assert {u: caps[f"client.{u}"]["osd"] for u in changed} == changed
    assert cluster.cli("plan", "-f", str(path), "--detailed-exitcode").returncode == 0


def test_new_initialised_pools_cost_two_osdmap_epochs_whatever_their_number(cluster, applied):
    pools = "{" + ", ".join(f"epoch{i}: {{pg_num: 1}}" for i in range(6)) + "}"
    path = cluster.write_spec("epochs.yaml", _clients_spec({}, pools).replace(
        "clients:\n\n", "clients: {}\n"))
    before = _commits(cluster)
    done = cluster.cli("apply", "-f", str(path), "--yes")
    after = _commits(cluster)
    assert done.returncode == 0, done.stderr
    # create; rbd application + validation snapshot: one epoch each, for all six pools at
    # once. The snapshots' release is sent but not waited for: it lands in the next epoch,
    # after the command has returned.
    assert after["osdmap"] - before["osdmap"] in (2, 3)
    assert after["auth"] == before["auth"]
    deadline = time.monotonic() + 15
    while True:
        with cluster.admin() as conn:
            seqs = {p["pool_name"]: p["snap_seq"] for p in conn.mon("osd dump")["pools"]
                    if p["pool_name"].startswith("epoch")}
        # 2 is the validation snapshot librbd's way allocates; its release moves it to 3
        if set(seqs.values()) == {3} or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert seqs == {f"epoch{i}": 3 for i in range(6)}
    assert cluster.cli("plan", "-f", str(path), "--detailed-exitcode").returncode == 0
