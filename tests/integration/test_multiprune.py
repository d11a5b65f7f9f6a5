"""plan/apply --prune with several clusters, against two real sandboxes (site-a, site-b):
each cluster prunes its own part against its own records, under its own lock; its `-`
lines and refusals are prefixed with its name; a refused, unreachable or locked cluster
removes nothing while the other's removals are applied; saved plans; per-cluster keyring
files; the mirroring user and replica pool kept while mirroring is declared; two entries
reaching one cluster refused. The tests run in order (each builds on the one before)."""

from __future__ import annotations

import json

import pytest

from cephstack.ceph import runlock
from cephstack.keyfiles import keyring_key
from tests.integration.test_multicluster import RUNNING, cli

pytestmark = pytest.mark.slow

NOTE = "cephstack created are no longer declared: apply --prune removes them"
HEAD = """\
clusters:
  site-a: {{conf: {a.conf}, keyring: {a.admin_keyring}}}
  site-b: {{conf: {b.conf}, keyring: {b.admin_keyring}, connect_timeout: 3}}
keyrings: {{directory: {keys}}}
"""
POOLS = {  # name: its cluster
    "images": "site-a", "volume": "site-a", "backups": "site-a", "full": "site-a",
    "extra-a": "site-a", "lock-a": "site-a", "lock-b": "site-b",
    "images-b": "site-b", "old-b": "site-b",
}


def _spec(root, sites, *, drop=(), glance=("images", "images-b"), backup=True,
          mirrored=False, head=HEAD):
    """The layout, without the pools in `drop`; glance on the pools `glance`; the
    cinder-backup service (on backups) only while `backup`; `volume` mirrored from
    site-a to site-b when `mirrored`."""
    a, b = sites
    text = head.format(a=a.box, b=b.box, keys=root / "keys") + "pools:\n"
    text += "".join(f"  {name}: {{cluster: {site}, pg_num: 8}}\n"
                    for name, site in POOLS.items() if name not in drop)
    text += f"services:\n  glance: {{user: glance, pools: [{', '.join(glance)}]}}\n"
    text += "  cinder-volume: {user: cinder-volume, pool: volume}\n"
    if backup:
        text += "  cinder-backup: {user: cinder-backup, pool: backups}\n"
    if mirrored:
        text += "mirroring: {primary: site-a, secondary: site-b, pools: [volume], schedule: 1m}\n"
    path = root / "prune.yaml"
    path.write_text(text)
    return str(path)


def _pools(site) -> set[str]:
    with site.admin() as conn:
        return set(conn.mon("osd pool ls"))


def _users(site) -> dict[str, str]:
    with site.admin() as conn:
        return {e["entity"]: e["key"] for e in conn.mon("auth ls")["auth_dump"]}


def _removals(doc: dict) -> set[str]:
    return {a["address"] for a in doc["actions"] if a["symbol"] == "-"}


@pytest.fixture(scope="module")
def sites(two_clusters, tmp_path_factory):
    """The whole layout applied on both clusters (everything recorded as created)."""
    root = tmp_path_factory.mktemp("multiprune")
    RUNNING[:] = [c.box for c in two_clusters]
    applied = cli(root, "apply", "-f", _spec(root, two_clusters), "--yes")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    yield root, two_clusters
    RUNNING.clear()


def test_plan_notes_then_shows_only_the_dropped_part_of_one_cluster(sites):
    root, (a, b) = sites
    dropped = _spec(root, (a, b), drop=("backups",), backup=False)
    plain = cli(root, "plan", "-f", dropped, "--detailed-exitcode")
    assert plain.returncode == 0, plain.stdout + plain.stderr  # nothing to do without it
    assert f"Note: site-a: 3 things {NOTE} (pool.backups, client.cinder-backup, keyring " \
        in plain.stdout
    site_b = plain.stdout.split("== cluster site-b")[1].split("Across")[0]
    assert NOTE not in site_b and "No changes" in site_b
    assert "  - " not in plain.stdout

    plan = cli(root, "plan", "-f", dropped, "--prune", "--output", "json")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    doc = json.loads(plan.stdout)
    keyring = root / "keys" / "site-a.client.cinder-backup.keyring"
    assert _removals(doc) == {"site-a/pool.backups", "site-a/client.cinder-backup",
                              f"site-a/keyring {keyring}"}
    assert doc["clusters"]["site-b"]["plan"]["actions"] == []
    assert doc["refusals"] == [] and doc["failed"] == []
    text = cli(root, "plan", "-f", dropped, "--prune")
    assert "  - site-a/pool.backups" in text.stdout
    assert "  - site-a/client.cinder-backup" in text.stdout


def test_a_saved_prune_plan_removes_them_and_leaves_the_other_cluster(sites):
    root, (a, b) = sites
    dropped = _spec(root, (a, b), drop=("backups",), backup=False)
    without = root / "without.plan.json"
    assert cli(root, "plan", "-f", dropped, "--out", str(without)).returncode == 0
    refused = cli(root, "apply", "--plan", str(without), "--prune")
    assert refused.returncode != 0 and "saved without --prune" in refused.stderr

    saved = root / "prune.plan.json"
    plan = cli(root, "plan", "-f", dropped, "--prune", "--out", str(saved))
    assert plan.returncode == 0, plan.stdout + plan.stderr
    b_before = (_pools(b), _users(b))
    applied = cli(root, "apply", "--plan", str(saved))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "backups" not in _pools(a) and "client.cinder-backup" not in _users(a)
    assert not (root / "keys" / "site-a.client.cinder-backup.keyring").exists()
    assert {"images", "full", "extra-a"} <= _pools(a)
    assert (root / "keys" / "site-a.client.glance.keyring").exists()
    assert (_pools(b), _users(b)) == b_before  # the other cluster: untouched
    again = cli(root, "plan", "-f", dropped, "--prune", "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr
    assert NOTE not in again.stdout


def test_a_user_dropped_on_one_cluster_loses_only_that_clusters_keyring(sites):
    root, (a, b) = sites
    dropped = _spec(root, (a, b), drop=("backups", "images-b"), glance=("images",),
                    backup=False)
    applied = cli(root, "apply", "-f", dropped, "--prune", "--yes")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "  - site-b/client.glance" in applied.stdout
    assert "site-a/client.glance" not in applied.stdout
    assert "client.glance" not in _users(b) and "images-b" not in _pools(b)
    assert not (root / "keys" / "site-b.client.glance.keyring").exists()
    kept = root / "keys" / "site-a.client.glance.keyring"  # same user, the other cluster
    assert keyring_key(kept.read_text(), "client.glance").reveal() \
        == _users(a)["client.glance"]


def test_a_pool_holding_an_image_refuses_its_cluster_only(sites):
    root, (a, b) = sites
    with a.admin() as conn:
        conn.rbd("create", "full", "kept", 1 << 20)
    dropped = _spec(root, (a, b), drop=("backups", "images-b", "full", "extra-a", "old-b"),
                    glance=("images",), backup=False)
    plan = cli(root, "plan", "-f", dropped, "--prune", "--output", "json")
    assert plan.returncode == 1, plan.stdout + plan.stderr
    [refusal] = json.loads(plan.stdout)["refusals"]
    assert refusal.startswith("site-a: pool.full: cephstack created it and the spec no longer "
                              "declares it, but it holds 1 image(s), 0 snapshot(s), 0 trash "
                              "entries")
    applied = cli(root, "apply", "-f", dropped, "--prune", "--yes")
    assert applied.returncode == 1, applied.stdout + applied.stderr
    assert "Refused: site-a: pool.full" in applied.stdout
    assert {"full", "extra-a"} <= _pools(a)  # a cluster with a refusal removes nothing
    assert "old-b" not in _pools(b)  # the other's prune is applied
    with a.admin() as conn:
        conn.rbd("remove", "full", "kept")


def test_a_cluster_down_fails_clearly_while_the_others_prune_is_applied(sites):
    root, (a, b) = sites
    dropped = _spec(root, (a, b), drop=("backups", "images-b", "full", "extra-a", "old-b"),
                    glance=("images",), backup=False)
    outage = b.outage()
    outage.cut()
    try:
        run = cli(root, "apply", "-f", dropped, "--prune", "--yes", "--output", "json")
    finally:
        outage.restore()
    assert run.returncode == 3, run.stdout + run.stderr
    doc = json.loads(run.stdout)
    assert doc["failed"] == ["site-b"]
    assert doc["clusters"]["site-b"]["error"]["kind"] == "unreachable"
    assert {"site-a: - pool.full", "site-a: - pool.extra-a"} <= set(doc["applied"])
    assert doc["clusters"]["site-a"]["converged"] is True
    assert not {"full", "extra-a"} & _pools(a)
    assert _pools(a) >= {"images"}


ALL_DROPPED = {"drop": ("backups", "images-b", "full", "extra-a", "old-b"),
               "glance": ("images",), "backup": False}
SHARED = HEAD.replace("keyrings:", "  site-a-again: {{conf: {keys}/../copy.conf, keyring: "
                      "{a.admin_keyring}}}\nkeyrings:")


def test_two_entries_reaching_one_cluster_refuse_prune_there(sites):
    root, (a, b) = sites
    (root / "copy.conf").write_text(a.box.conf.read_text())  # another file, the same cluster
    spec = _spec(root, (a, b), head=SHARED, **ALL_DROPPED)
    plain = cli(root, "plan", "-f", spec, "--output", "json")
    assert plain.returncode == 0, plain.stdout + plain.stderr  # without --prune: as before
    run = cli(root, "plan", "-f", spec, "--prune", "--output", "json")
    assert run.returncode == 2, run.stdout + run.stderr
    doc = json.loads(run.stdout)
    assert doc["failed"] == ["site-a", "site-a-again"]
    error = doc["clusters"]["site-a"]["error"]
    assert error["kind"] == "invalid-spec"
    assert error["message"].startswith("--prune: clusters.site-a and clusters.site-a-again "
                                       "reach the same Ceph cluster (fsid ")
    assert doc["clusters"]["site-b"]["error"] is None  # the other cluster is still planned
    assert "plan" in doc["clusters"]["site-b"]


MIRROR = "client.rbd-mirror.site-b"


def test_mirroring_keeps_its_user_and_replica_until_it_is_no_longer_declared(sites):
    root, (a, b) = sites
    # site-b's rbd-mirror daemon on a user cephstack creates (the sandbox made its own)
    b.box.stop_daemon(MIRROR)
    with b.admin() as conn:
        conn.mon("auth rm", entity=MIRROR)
    mirrored = _spec(root, (a, b), mirrored=True, **ALL_DROPPED)
    applied = cli(root, "apply", "-f", mirrored, "--yes")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    made = root / "keys" / f"site-b.{MIRROR}.keyring"
    b.box.mirror_keyring("site-b").write_text(made.read_text())
    b.box.start_daemon(MIRROR)
    assert "volume" in _pools(b)  # the replica pool, created (and recorded) by apply

    kept = cli(root, "plan", "-f", mirrored, "--prune", "--output", "json")
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert _removals(json.loads(kept.stdout)) == set()

    unmirrored = _spec(root, (a, b), **ALL_DROPPED)
    plan = cli(root, "plan", "-f", unmirrored, "--prune", "--output", "json")
    assert plan.returncode == 1, plan.stdout + plan.stderr
    doc = json.loads(plan.stdout)
    assert len(doc["refusals"]) == 1, doc["refusals"]
    [refusal] = doc["refusals"]
    assert refusal.startswith(f"site-b: {MIRROR}: cephstack created it and the spec no "
                              "longer declares it, but ") and "client session(s)" in refusal
    cinder = root / "keys" / "site-b.client.cinder-volume.keyring"  # its replica pool's user
    assert {r for r in _removals(doc) if r.startswith("site-b/")} == {
        "site-b/pool.volume", f"site-b/keyring {made}", "site-b/client.cinder-volume",
        f"site-b/keyring {cinder}"}
    # site-a's mirroring user was made by the sandbox: only the file apply wrote goes
    site_a_file = root / "keys" / "site-a.client.rbd-mirror.site-a.keyring"
    assert {r for r in _removals(doc) if r.startswith("site-a/")} == {
        f"site-a/keyring {site_a_file}"}
    refused = cli(root, "apply", "-f", unmirrored, "--prune", "--yes")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "volume" in _pools(b) and made.exists()  # refused: nothing removed there
    assert not site_a_file.exists()  # site-a had no refusal

    b.box.stop_daemon(MIRROR)
    applied = cli(root, "apply", "-f", unmirrored, "--prune", "--yes")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "volume" not in _pools(b) and MIRROR not in _users(b) and not made.exists()
    assert "client.cinder-volume" not in _users(b) and not cinder.exists()
    assert "client.cinder-volume" in _users(a) and "volume" in _pools(a)
    assert "client.rbd-mirror.site-a" in _users(a)  # not cephstack's: never removed


def test_each_cluster_removes_under_its_own_lock(sites):
    root, (a, b) = sites
    spec = _spec(root, (a, b), **{**ALL_DROPPED,
                                  "drop": (*ALL_DROPPED["drop"], "lock-a", "lock-b")})
    with a.admin() as conn, runlock.hold(conn, "apply", runlock.EXCLUSIVE):
        held = cli(root, "apply", "-f", spec, "--prune", "--yes", "--output", "json")
        assert held.returncode == 6, held.stdout + held.stderr
        doc = json.loads(held.stdout)
        assert doc["failed"] == ["site-a"]
        assert doc["clusters"]["site-a"]["error"]["kind"] == "locked"
        assert "lock-a" in _pools(a)  # nothing removed without its cluster's lock
        assert "lock-b" not in _pools(b)  # the other cluster's lock was free
    applied = cli(root, "apply", "-f", spec, "--prune", "--yes")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "lock-a" not in _pools(a)
