"""render against a real sandbox (and a real, private libvirtd for the secrets)."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import stat
import subprocess

import pytest

from cephstack.ceph.adapter import CephConnection, ClusterAccess
from cephstack.render.model import secret_uuid

OWN_POOL = {"glance": "images", "cinder-volume": "volume", "cinder-backup": "backups",
            "nova": "vm"}


@pytest.fixture(scope="module")
def rendered(cluster):
    spec = cluster.write_spec()
    # The hand-kept nova.conf below uses qcow2: this spec lets the merge replace it.
    spec.write_text(spec.read_text().replace("    direct_snapshots: false\n",
                                             "    direct_snapshots: false\n"
                                             "    replace_existing: true\n")
                    + f"\nrender: {{directory: {cluster.workdir / 'out'}}}\n")
    assert cluster.cli("apply", "-f", str(spec), "--yes").returncode == 0
    proc = cluster.cli("render", "-f", str(spec))
    assert proc.returncode == 0, proc.stderr
    return spec, cluster.workdir / "out"


def test_each_bundle_lets_its_users_reach_their_pools(cluster, rendered):
    _, out = rendered
    for role in ("controller", "backup", "compute"):
        conf = out / role / "etc/ceph/ceph.conf"
        for keyring in sorted((out / role / "etc/ceph").glob("*.keyring")):
            entity = keyring.name.removeprefix("ceph.").removesuffix(".keyring")
            with (CephConnection(ClusterAccess(str(conf), str(keyring), entity, 5)) as conn,
                  conn.ioctx(OWN_POOL[entity.removeprefix("client.")]) as ioctx):
                list(ioctx.target.list_objects())


def test_keys_are_only_in_private_files(cluster, rendered):
    _, out = rendered
    keys = cluster.keys()
    for path in out.rglob("*"):
        if path.is_file():
            mode = stat.S_IMODE(path.stat().st_mode)
            if path.suffix == ".keyring":  # root:<service> 0640 on the host
                assert mode == 0o640, path
            elif path.suffix == ".key":  # read by libvirt (root) only
                assert mode == 0o600, path
            else:
                assert mode in (0o644, 0o755), path
                assert not any(k in path.read_text() for k in keys), path


def test_render_again_changes_nothing(cluster, rendered):
    spec, _ = rendered
    again = cluster.cli("render", "-f", str(spec), "--output", "json")
    assert {f["state"] for f in json.loads(again.stdout)["files"]} == {"unchanged"}


def test_render_dry_run_writes_nothing(cluster, rendered):
    """Issue 19: a hand-edited fragment and an obsolete file (listed by the last render,
    no longer rendered) survive `render --dry-run`, which only says what would change."""
    spec, out = rendered
    cinder = out / "controller/fragments/cinder.conf"
    edited = cinder.read_text().replace("rbd_pool = volume", "rbd_pool = volumes")
    cinder.write_text(edited)
    obsolete = out / "compute/etc/ceph/ceph.client.old-nova.keyring"
    obsolete.write_text("[client.old-nova]\n")
    index = out / "RENDERED.json"
    listed = json.loads(index.read_text())
    listed["files"].append("compute/etc/ceph/ceph.client.old-nova.keyring")
    index.write_text(json.dumps(listed, indent=2) + "\n")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    dry = cluster.cli("render", "-f", str(spec), "--dry-run", "--output", "json")
    assert dry.returncode == 0, dry.stderr
    doc = json.loads(dry.stdout)
    states = {f["path"]: f["state"] for f in doc["files"] if f["state"] != "unchanged"}
    assert doc["dry_run"] is True
    assert states == {str(cinder): "updated", str(obsolete): "removed", str(index): "updated"}
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    text = cluster.cli("render", "-f", str(spec), "--dry-run")
    assert f"would be updated {cinder}" in text.stdout and "Nothing was written" in text.stdout
    assert cinder.read_text() == edited and obsolete.exists()
    real = cluster.cli("render", "-f", str(spec))  # without --dry-run: both are set right
    assert real.returncode == 0, real.stderr
    assert "rbd_pool = volume\n" in cinder.read_text() and not obsolete.exists()


def test_plan_reports_drift_of_rendered_files_and_apply_restores_them(cluster, rendered):
    spec, out = rendered
    cinder = out / "controller/fragments/cinder.conf"
    cinder.write_text(cinder.read_text().replace("rbd_pool = volume", "rbd_pool = volumes"))
    nova_key = out / "compute/etc/ceph/ceph.client.nova.keyring"
    nova_key.write_text("[client.nova]\n\tkey = AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==\n")
    plan = cluster.cli("plan", "-f", str(spec), "--output", "json", "--detailed-exitcode")
    assert plan.returncode == 2
    actions = {a["address"]: a["changes"] for a in json.loads(plan.stdout)["actions"]}
    assert set(actions) == {f"file {cinder}", f"file {nova_key}"}
    assert [(c["field"], c["before"], c["after"]) for c in actions[f"file {cinder}"]] == [
        ("rbd_pool", "volumes", "volume")]
    assert actions[f"file {nova_key}"][0]["after"] == "(sensitive)"
    assert cluster.cli("apply", "-f", str(spec), "--yes").returncode == 0
    assert cluster.cli("plan", "-f", str(spec), "--detailed-exitcode").returncode == 0
    assert stat.S_IMODE(nova_key.stat().st_mode) == 0o640


NOVA_CONF = (b"# A hand-kept nova.conf\n[DEFAULT]\nmy_ip = 10.0.0.5\n\n[libvirt]\n"
             b"# operators' note\nvirt_type = kvm\nimages_type=qcow2\n\n[vnc]\nenabled = true")


def test_merge_into_changes_only_cephstacks_options(cluster, rendered):
    spec, _ = rendered
    target = cluster.workdir / "etc" / "nova.conf"
    target.parent.mkdir(exist_ok=True)
    target.write_bytes(NOVA_CONF)
    first = cluster.cli("render", "-f", str(spec), "--merge-into", str(target))
    assert first.returncode == 0, first.stderr
    assert "+images_type = rbd" in first.stdout and "-images_type=qcow2" in first.stdout
    assert (target.parent / "nova.conf.cephstack.bak").read_bytes() == NOVA_CONF
    owned = {b"images_type", b"images_rbd_pool", b"images_rbd_ceph_conf", b"rbd_user",
             b"rbd_secret_uuid", b"disk_cachemodes", b"hw_disk_discard"}

    def others(data: bytes) -> bytes:
        return b"".join(line for line in data.splitlines(keepends=True)
                        if line.split(b"=")[0].strip() not in owned)
    merged = target.read_bytes()
    assert others(merged) == others(NOVA_CONF) + b"\n"  # only the final newline was added
    uuid = secret_uuid(_fsid(cluster), "client.nova")
    assert f"rbd_secret_uuid = {uuid}".encode() in merged
    second = cluster.cli("render", "-f", str(spec), "--merge-into", str(target))
    assert second.returncode == 0 and "No changes" in second.stdout
    assert target.read_bytes() == merged


def _fsid(cluster) -> str:
    with cluster.admin() as conn:
        return conn.fsid()


def test_kolla_layout(cluster, rendered):
    spec, _ = rendered
    out = cluster.workdir / "kolla"
    proc = cluster.cli("render", "-f", str(spec), "--format", "kolla", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    files = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert files == {
        "globals.yml", "RENDERED.json", "config/glance.conf", "config/glance/ceph.conf",
        "config/glance/ceph.client.glance.keyring", "config/cinder/ceph.conf",
        "config/cinder/cinder-volume/ceph.client.cinder-volume.keyring",
        "config/cinder/cinder-backup/ceph.client.cinder-backup.keyring",
        "config/cinder/cinder-backup/ceph.client.cinder-volume.keyring",
        "config/nova/ceph.conf", "config/nova/ceph.client.nova.keyring",
        "config/nova/ceph.client.cinder-volume.keyring"}


def test_secrets_install_into_a_real_libvirtd(cluster, rendered, libvirtd):
    import libvirt

    _, out = rendered
    secrets = out / "compute" / "secrets"
    fsid = _fsid(cluster)
    uuids = {e: secret_uuid(fsid, e) for e in ("client.nova", "client.cinder-volume")}
    try:
        first = cluster.cli("secrets", "install", "--dir", str(secrets), "--uri", libvirtd,
                            "--output", "json")
        assert first.returncode == 0, first.stderr
        assert {s["uuid"]: s["changed"] for s in json.loads(first.stdout)["secrets"]} == {
            u: True for u in uuids.values()}
        conn = libvirt.open(libvirtd)
        with cluster.admin() as admin:
            keys = {e["entity"]: e["key"] for e in admin.mon("auth ls")["auth_dump"]}
        for entity, uuid in uuids.items():
            secret = conn.secretLookupByUUIDString(uuid)
            assert secret.value() == base64.b64decode(keys[entity])
            assert secret.usageID() == f"{entity} secret (ceph cluster {fsid})"
        again = cluster.cli("secrets", "install", "--dir", str(secrets), "--uri", libvirtd)
        assert again.returncode == 0 and "2 unchanged" in again.stdout
        # The shell route, for hosts without cephstack: virsh reads the key from its file.
        for uuid in uuids.values():
            conn.secretLookupByUUIDString(uuid).undefine()
        script = subprocess.run(["sh", str(secrets / "install.sh")], capture_output=True,
                                text=True, env={**os.environ, "LIBVIRT_DEFAULT_URI": libvirtd})
        assert script.returncode == 0, script.stderr
        for entity, uuid in uuids.items():
            assert conn.secretLookupByUUIDString(uuid).value() == base64.b64decode(keys[entity])
            assert keys[entity] not in script.stdout + script.stderr
    finally:
        conn = libvirt.open(libvirtd)
        for uuid in uuids.values():
            with contextlib.suppress(libvirt.libvirtError):
                conn.secretLookupByUUIDString(uuid).undefine()


def test_verify_checks_the_rendered_files(cluster, rendered):
    spec, out = rendered
    proc = cluster.cli("verify", "-f", str(spec), "--only", "config", "--output", "json")
    steps = {s["name"]: s for s in json.loads(proc.stdout)["steps"] if s["service"] == "config"}
    assert proc.returncode == 0, proc.stdout
    assert {s["result"] for s in steps.values()} == {"pass"} and len(steps) == 3
    cinder = out / "controller/fragments/cinder.conf"
    good = cinder.read_text()
    uuid = secret_uuid(_fsid(cluster), "client.cinder-volume")
    cinder.write_text(good.replace(uuid, "00000000-0000-4000-8000-000000000000"))
    try:
        proc = cluster.cli("verify", "-f", str(spec), "--only", "config", "--output", "json")
    finally:
        cinder.write_text(good)
    [bad] = [s for s in json.loads(proc.stdout)["steps"] if s["result"] == "fail"]
    assert proc.returncode == 1
    assert "no libvirt secret 00000000-0000-4000-8000-000000000000 for client.cinder-volume" \
        in bad["error"]
    assert f"cephstack apply -f {spec}" in bad["fix"] and "host install" in bad["fix"]


def test_apply_refreshes_rendered_files_that_wait_for_new_users(cluster, rendered):
    spec, out = rendered
    renamed = cluster.write_spec("nova-two.yaml", spec.read_text().replace(
        "user: nova\n", "user: nova-two\n"))
    plan = cluster.cli("plan", "-f", str(renamed))
    assert "refreshed once the new users exist" in plan.stdout
    applied = cluster.cli("apply", "-f", str(renamed), "--yes")
    assert applied.returncode == 0, applied.stderr
    assert "rbd_user = nova-two" in (out / "compute/fragments/nova.conf").read_text()
    assert cluster.cli("plan", "-f", str(renamed), "--detailed-exitcode").returncode == 0
    # apply dropped client.nova's secret and keyring: only current users' keys stay.
    old = secret_uuid(_fsid(cluster), "client.nova")
    assert not (out / "compute" / "secrets" / f"{old}.key").exists()
    assert not (out / "compute/etc/ceph/ceph.client.nova.keyring").exists()
    assert (out / "compute/etc/ceph/ceph.client.nova-two.keyring").exists()
    again = cluster.cli("render", "-f", str(renamed), "--output", "json")
    assert {f["state"] for f in json.loads(again.stdout)["files"]} == {"unchanged"}


def test_role_names_a_role_of_a_one_cluster_spec(cluster, rendered):
    spec, out = rendered
    target = cluster.workdir / "etc" / "role-nova.conf"
    target.parent.mkdir(exist_ok=True)
    target.write_text("[DEFAULT]\nmy_ip = 10.0.0.5\n")
    merged = cluster.cli("render", "-f", str(spec), "--merge-into", str(target), "--as", "nova",
                         "--role", "compute")
    assert merged.returncode == 0, merged.stderr
    compute = (out / "compute" / "fragments" / "nova.conf").read_text()
    for line in ("images_type = rbd", "images_rbd_pool = vm", "rbd_user = nova"):
        assert line in target.read_text() and line in compute
