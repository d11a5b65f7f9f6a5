"""Adopting a cluster configured by hand with the seed guide's own `ceph` commands."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import uuid

import pytest

USERS = {
    "glance": "allow rwx pool=images",
    "cinder-volume": "allow rwx pool=volume",
    "cinder-backup": "allow rwx pool=volume, allow rwx pool=backups",
    "nova": "allow rwx pool=vm",
}


@pytest.fixture(scope="module")
def seed(cluster):
    """The guide, step by step, through the ceph CLI."""
    keys = cluster.workdir / "seed-keys"
    keys.mkdir()
    ceph = ["ceph", "-c", str(cluster.box.conf)]
    for pool in ("volume", "vm", "images", "backups"):
        subprocess.run([*ceph, "osd", "pool", "create", pool, "32", "32"], check=True,
                       capture_output=True)
    for user, osd in USERS.items():
        subprocess.run([*ceph, "auth", "get-or-create", f"client.{user}"], check=True,
                       capture_output=True)
        subprocess.run([*ceph, "auth", "caps", f"client.{user}", "mon", "allow r", "osd", osd],
                       check=True, capture_output=True)
        subprocess.run([*ceph, "auth", "get", f"client.{user}", "-o",
                        str(keys / f"ceph.client.{user}.keyring")], check=True,
                       capture_output=True)
    return keys


def admin_args(cluster):
    return ["--conf", str(cluster.box.conf), "--keyring", str(cluster.box.admin_keyring)]


def audit(cluster, *args):
    proc = cluster.cli("audit", *admin_args(cluster), "--output", "json", *args)
    findings = {(f["id"], f["entity"]) for f in json.loads(proc.stdout)["findings"]}
    return proc.returncode, findings


def keys_of(cluster):
    with cluster.admin() as conn:
        return {e["entity"]: e["key"] for e in conn.mon("auth ls")["auth_dump"]
                if e["entity"].removeprefix("client.") in USERS}


def test_audit_reports_the_seeds_flaws_and_nothing_else(cluster, seed):
    code, findings = audit(cluster, "--keyring-dir", str(seed))
    assert code == 2  # errors
    expected = {("mon-cannot-blocklist", f"client.{u}") for u in USERS}
    expected |= {("no-cow-clone-from-images", "client.cinder-volume"),
                 ("no-cow-clone-from-images", "client.nova"),
                 ("glance-cannot-unprotect", "client.glance")}
    expected |= {("pool-without-rbd-application", f"pool {p}")
                 for p in ("images", "volume", "backups", "vm")}
    expected.add(("trash-not-purged", "pool volume"))  # Cinder's pool: nothing purges it
    if stat.S_IMODE(os.stat(seed / "ceph.client.glance.keyring").st_mode) & 0o007:
        expected |= {("keyring-readable-by-others", str(seed / f"ceph.client.{u}.keyring"))
                     for u in USERS}
    assert findings == expected


def test_text_audit_says_what_breaks_and_the_fix(cluster, seed):
    proc = cluster.cli("audit", *admin_args(cluster))
    assert proc.returncode == 2
    assert "mon-cannot-blocklist  client.nova" in proc.stdout
    assert "nova evacuate and lock recovery hang" in proc.stdout
    assert "fix:    osd 'profile rbd-read-only pool=images'" in proc.stdout


def test_import_as_is_plans_no_changes(cluster, seed):
    proc = cluster.cli("import", *admin_args(cluster), "--out", "asis.yaml")
    assert proc.returncode == 0, proc.stderr
    text = (cluster.workdir / "asis.yaml").read_text()
    assert '"glance": {caps: {mon: "allow r", osd: "allow rwx pool=images"}}' in text
    plan = cluster.cli("plan", "-f", str(cluster.workdir / "asis.yaml"), "--detailed-exitcode")
    assert plan.returncode == 0, plan.stdout
    assert "No changes: the cluster matches the spec." in plan.stdout


def test_import_fix_plans_what_the_audit_asked_then_apply_makes_it_clean(cluster, seed):
    keys_before = keys_of(cluster)
    proc = cluster.cli("import", *admin_args(cluster), "--out", "fix.yaml", "--fix",
                       "--keyring-dir", str(seed))
    assert proc.returncode == 0, proc.stderr
    spec = cluster.workdir / "fix.yaml"
    plan = json.loads(cluster.cli("plan", "-f", str(spec), "--output", "json").stdout)
    changed = {a["address"] for a in plan["actions"]}
    _, findings = audit(cluster, "--keyring-dir", str(seed))
    asked = {e if not e.startswith("/") else f"keyring {e}" for _, e in findings}
    asked = {a.replace("pool ", "pool.") for a in asked}
    asked |= {f"trash_purge.{e.removeprefix('pool ')}" for i, e in findings
              if i == "trash-not-purged"}  # the fixed spec's Cinder pool gets the schedule
    assert changed == asked  # every change was asked for by a finding, and vice versa
    assert all(a["symbol"] == "~" for a in plan["actions"])  # nothing created or destroyed
    [disruptive] = [a["address"] for a in plan["actions"] if a["disruptive"]]
    assert disruptive == "client.cinder-backup"  # it loses write on Cinder's volumes
    refused = cluster.cli("apply", "-f", str(spec), "--yes")
    assert refused.returncode == 1 and keys_of(cluster) == keys_before
    applied = cluster.cli("apply", "-f", str(spec), "--yes", "--allow-disruptive")
    assert applied.returncode == 0, applied.stderr
    assert keys_of(cluster) == keys_before  # caps changed in place, keys untouched
    assert audit(cluster, "--keyring-dir", str(seed)) == (0, set())
    assert audit(cluster, "-f", str(spec)) == (0, set())
    verify = cluster.cli("verify", "-f", str(spec), "--output", "json")
    assert json.loads(verify.stdout)["passed"] is True, verify.stdout


def test_backup_snapshots_piling_up_are_reported(cluster, seed):
    volume = f"volume-{uuid.uuid4()}"
    with cluster.admin() as conn:
        conn.rbd("create", "volume", volume, 4 * 1024 * 1024, old_format=False)
        with conn.image("volume", volume) as image:
            for n in range(3):
                image.create_snap(f"backup.{uuid.uuid4()}.snap.17000000{n}.5")
    try:
        assert audit(cluster) == (1, {("backup-snapshots-pile-up", f"volume/{volume}")})
    finally:
        with cluster.admin() as conn:
            with conn.image("volume", volume) as image:
                for snap in list(image.list_snaps()):
                    image.remove_snap(snap["name"])
            conn.rbd("remove", "volume", volume)
