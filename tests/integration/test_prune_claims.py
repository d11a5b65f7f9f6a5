"""--prune on a cluster cephstack does not have to itself (issues 18 and 19), against a real
sandbox: a pool holding data only in an RBD namespace or as a plain RADOS object is never
deleted, and the refusal changes nothing; two specs on one cluster never prune each other;
records edited to name Ceph's own users, and a keyring directory named through a link, are
never acted on; records from before records were per spec are pruned only once adopted.
The tests run in order on one cluster."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from cephstack.spec.defaults import DEFAULT_SPEC
from cephstack.spec.load import load_spec

pytestmark = pytest.mark.slow

SCRATCH = "  vm:      {pg_num: 32}              # Nova guest disks\n"
B_SPEC = """\
id: cloud-b
cluster:
  conf: {conf}
  keyring: {keyring}
pools:
  b-images: {{pg_num: 8}}
services:
  glance: {{user: glance-b, pool: b-images}}
keyrings: {{directory: {keys}}}
"""


def _a_spec(cluster, *, scratch: bool, keys: str | None = None) -> str:
    text = DEFAULT_SPEC
    if scratch:
        text = text.replace(SCRATCH, SCRATCH + "  scratch: {pg_num: 8}\n  plain: {pg_num: 8}\n")
    path = cluster.write_spec("a.yaml", text)
    if keys:
        path.write_text(path.read_text().replace(str(cluster.workdir / "keys"), keys))
    return str(path)


def _b_spec(cluster) -> str:
    path = cluster.workdir / "b.yaml"
    path.write_text(B_SPEC.format(conf=cluster.box.conf, keyring=cluster.box.admin_keyring,
                                  keys=cluster.workdir / "keys-b"))
    return str(path)


def _world(cluster) -> dict:
    """Everything a prune could change: pools, users and their caps, keyring files."""
    with cluster.admin() as conn:
        pools = sorted(p["pool_name"] for p in conn.mon("osd pool ls", detail="detail"))
        users = {e["entity"]: e["caps"] for e in conn.mon("auth ls")["auth_dump"]}
    files = sorted(str(p.relative_to(cluster.workdir)) for p in cluster.workdir.glob("*/*.keyring")
                   if p.parent.name.startswith("keys"))
    return {"pools": pools, "users": users, "files": files}


@pytest.fixture(scope="module")
def applied(cluster):
    """Spec A (the default, plus pools scratch and plain) and spec B on one cluster."""
    for spec in (_a_spec(cluster, scratch=True), _b_spec(cluster)):
        done = cluster.cli("apply", "-f", spec, "--yes")
        assert done.returncode == 0, done.stdout + done.stderr
    with cluster.admin() as conn:
        conn.mon("config set", who="mon", name="mon_allow_pool_delete", value="true")
    return cluster


def test_two_specs_keep_their_own_records(applied):
    listed = applied.cli("records", "list", "-f", _a_spec(applied, scratch=True),
                         "--output", "json")
    assert listed.returncode == 0, listed.stderr
    records = json.loads(listed.stdout)["clusters"]["ceph"]
    owner_a = load_spec(_a_spec(applied, scratch=True)).records_owner
    assert records["spec"] == owner_a
    assert records["records"]["cloud-b"] == {"pools": ["b-images"], "users": ["client.glance-b"]}
    assert "scratch" in records["records"][owner_a]["pools"]


def test_a_pool_with_data_only_in_a_namespace_or_as_an_object_is_not_deleted(applied):
    with applied.admin() as conn:
        conn.mon("osd pool application enable", pool="plain", app="rbd")
        with conn.ioctx("plain") as ioctx:
            ioctx.write_full("precious", b"data")
    rbd = ["rbd", "-c", str(applied.box.conf), "-k", str(applied.box.admin_keyring)]
    subprocess.run(rbd + ["namespace", "create", "scratch/tenant1"], check=True)
    subprocess.run(rbd + ["create", "--size", "1M", "scratch/tenant1/img1"], check=True)
    before = _world(applied)
    dropped = _a_spec(applied, scratch=False)
    plan = applied.cli("plan", "-f", dropped, "--prune")
    assert plan.returncode == 1, plan.stdout + plan.stderr
    assert "pool.scratch: cephstack created it" in plan.stdout
    assert "namespace tenant1" in plan.stdout
    assert "pool.plain: cephstack created it" in plan.stdout
    assert "RADOS object(s) (in the default namespace)" in plan.stdout
    done = applied.cli("apply", "-f", dropped, "--prune", "--yes")
    assert done.returncode == 1
    assert _world(applied) == before  # refused: nothing at all changed
    with applied.admin() as conn, conn.ioctx("plain") as ioctx:
        ioctx.remove_object("precious")
    subprocess.run(rbd + ["rm", "scratch/tenant1/img1"], check=True, capture_output=True)
    subprocess.run(rbd + ["namespace", "remove", "scratch/tenant1"], check=True)


def test_records_edited_to_name_ceph_users_or_files_outside_are_not_acted_on(applied):
    owner = load_spec(_a_spec(applied, scratch=True)).records_owner
    key = f"cephstack/created/spec/{owner}/users/0"
    outside = applied.workdir / "outside.keyring"
    outside.write_text("not a key cephstack wrote\n")
    host_doc = next(k for k in _raw(applied) if k.startswith(f"cephstack/created/spec/{owner}/"
                                                             "keyrings/"))
    with applied.admin() as conn:
        users = json.loads(_raw(applied)[key])
        users["client.bootstrap-osd"] = {"mon": "allow profile bootstrap-osd"}
        users["client.admin"] = {"mon": "allow *"}
        conn.mon("config-key set", key=key, val=json.dumps(users))
        files = json.loads(_raw(applied)[host_doc])
        files[str(applied.box.admin_keyring)] = "client.admin"
        files[str(outside)] = "client.glance"
        conn.mon("config-key set", key=host_doc, val=json.dumps(files))
    before = _world(applied)
    plan = applied.cli("plan", "-f", _a_spec(applied, scratch=True), "--prune")
    assert "client.bootstrap-osd is not a user cephstack creates" in plan.stdout
    assert "client.admin is not a user cephstack creates" in plan.stdout
    assert f"{applied.box.admin_keyring} is not in the spec's keyring directory" in plan.stdout
    audit = applied.cli("audit", "-f", _a_spec(applied, scratch=True), "--output", "json")
    doubted = [f["what"] for f in json.loads(audit.stdout)["findings"]
               if f["id"] == "record-not-believed"]  # audit says it too
    assert any("client.bootstrap-osd is not a user cephstack creates" in d for d in doubted)
    done = applied.cli("apply", "-f", _a_spec(applied, scratch=True), "--prune", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert _world(applied) == before
    assert applied.box.admin_keyring.exists() and outside.exists()


def test_the_keyring_directory_named_through_a_link_keeps_its_files(applied):
    link = applied.workdir / "alias"  # a symlinked parent of the keyring directory
    link.symlink_to(applied.workdir)
    for old in (applied.workdir / "keys").glob("ceph.client.*.keyring"):
        old.unlink()  # written again through the link: recorded by that path
    via_link = _a_spec(applied, scratch=True, keys=str(link / "keys"))
    done = applied.cli("apply", "-f", via_link, "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    before = _world(applied)
    real = _a_spec(applied, scratch=True)
    done = applied.cli("apply", "-f", real, "--prune", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert _world(applied)["files"] == before["files"]  # all four still there
    assert len(list((applied.workdir / "keys").glob("ceph.client.*.keyring"))) == 4


def test_pruning_spec_a_leaves_spec_b_alone(applied):
    b_before = {k: v for k, v in _world(applied).items()}
    done = applied.cli("apply", "-f", _a_spec(applied, scratch=False), "--prune", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    after = _world(applied)
    assert "scratch" not in after["pools"] and "plain" not in after["pools"]
    assert "b-images" in after["pools"] and "client.glance-b" in after["users"]
    assert after["users"]["client.glance-b"] == b_before["users"]["client.glance-b"]
    assert os.path.exists(applied.workdir / "keys-b" / "ceph.client.glance-b.keyring")


def test_old_records_are_pruned_only_once_adopted(applied):
    with applied.admin() as conn:  # a record as cephstack wrote them before (no owner)
        conn.mon("osd pool create", pool="legacy", pg_num=8, pgp_num=8)
        pool_id = next(p["pool_id"] for p in conn.mon("osd pool ls", detail="detail")
                       if p["pool_name"] == "legacy")
        conn.mon("config-key set", key="cephstack/created/pools/0",
                 val=json.dumps({"legacy": pool_id}))
    spec = _a_spec(applied, scratch=False)
    plan = applied.cli("plan", "-f", spec, "--prune")
    assert "record(s) from before records were kept per spec (pool legacy)" in plan.stdout
    assert "- pool.legacy" not in plan.stdout
    audit = applied.cli("audit", "-f", spec, "--output", "json")
    assert "records-before-per-spec" in {f["id"] for f in json.loads(audit.stdout)["findings"]}
    cancelled = applied.cli("records", "adopt", "-f", spec)  # no terminal, no --yes
    assert cancelled.returncode == 1 and "--yes not given: no record adopted" in cancelled.stderr
    adopted = applied.cli("records", "adopt", "-f", spec, "--yes")
    assert adopted.returncode == 0, adopted.stderr
    assert "pools legacy" in adopted.stdout
    assert "cephstack/created/pools/0" not in _raw(applied)
    done = applied.cli("apply", "-f", spec, "--prune", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "legacy" not in _world(applied)["pools"]


def _raw(cluster) -> dict[str, str]:
    with cluster.admin() as conn:
        return conn.mon("config-key dump", key="cephstack/created/") or {}
