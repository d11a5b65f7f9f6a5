"""Encrypted traffic on a real sandbox: a spec with ms_mode secure and require_secure plans
the monitors' settings (disruptive: refused without the flag), apply converges them, every
service connects in secure mode (the monitor's own debug log names each connection's mode)
and a crc-only client is refused by the monitors and by the OSDs."""

from __future__ import annotations

import re
import time

import pytest

from cephstack.ceph.clusteraccess import ClusterAccess
from cephstack.verify.secure import ServiceAccess, secure_checks

pytestmark = pytest.mark.slow

SERVICES = {"glance": "images", "cinder-volume": "volume", "cinder-backup": "backups",
            "nova": "vm"}


@pytest.fixture(scope="module")
def secured(cluster):
    spec = cluster.write_spec()
    spec.write_text(spec.read_text().replace(
        "  connect_timeout: 10 ", "  ms_mode: secure\n  require_secure: true\n"
        "  connect_timeout: 10 "))
    plan = cluster.cli("plan", "-f", str(spec))
    refused = cluster.cli("apply", "-f", str(spec), "--yes")
    applied = cluster.cli("apply", "-f", str(spec), "--yes", "--allow-disruptive")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    return spec, plan, refused


def test_plan_shows_the_requirement_and_apply_needs_the_flag(cluster, secured):
    spec, plan, refused = secured
    for name in ("ms_mon_service_mode", "ms_service_mode", "ms_mon_cluster_mode",
                 "ms_cluster_mode"):
        assert f"~ config.global.{name}   # DISRUPTIVE" in plan.stdout, plan.stdout
    assert refused.returncode == 1 and "disruptive" in refused.stderr, refused.stderr
    with cluster.admin() as conn:
        dump = {e["name"]: e["value"] for e in conn.mon("config dump")
                if e["section"] == "global"}
    assert dump["ms_mon_service_mode"] == dump["ms_cluster_mode"] == "secure"
    again = cluster.cli("plan", "-f", str(spec))
    assert "No changes: the cluster matches the spec." in again.stdout, again.stdout


def test_every_service_connects_secure_and_a_crc_client_is_refused(cluster, secured):
    log = cluster.box.conf.parent / "log" / "mon.a.log"
    services = [ServiceAccess(kind, ClusterAccess(
        str(cluster.box.conf), str(cluster.workdir / "keys" / f"ceph.client.{kind}.keyring"),
        f"client.{kind}", 5), pool) for kind, pool in SERVICES.items()]
    with cluster.admin() as admin:
        admin.mon("config set", who="mon", name="debug_ms", value="1/1")
        try:
            steps = secure_checks(admin, services, required=True)
        finally:
            admin.mon("config rm", who="mon", name="debug_ms")
    assert [(s.name, s.ok) for s in steps] == [
        ("cluster requires secure", True),
        *((f"{kind}: secure connection", True) for kind in SERVICES),
        ("crc client refused by the monitors", True),
        ("crc client refused by the OSDs", True)], steps
    assert "accept only secure" in steps[0].detail and "osd.0" in steps[0].detail
    time.sleep(1)  # the monitor's log is written asynchronously
    text = log.read_text(errors="replace")
    for step in steps[1:5]:  # Ceph's side: the monitor's connection to each service
        nonce = re.search(r" at \S+/(\d+):", step.detail).group(1)
        modes = set(re.findall(rf">> \S+/{nonce} conn\(\S+ (?:msgr2=)?\S+ (\w+) ", text))
        assert modes == {"secure"}, (step.name, modes)
