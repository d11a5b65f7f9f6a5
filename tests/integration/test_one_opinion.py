"""One opinion: on a 3-OSD sandbox, plan notes the size-1 pools the default spec makes there
(the sandbox's default size is 1) before apply makes them, and the audit afterwards finds
nothing plan did not note."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from cephstack.sandbox.cluster import Sandbox
from tests.integration.conftest import Cluster


@pytest.fixture(scope="module")
def three_osds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("three-osds")
    box = Sandbox(root / "sandbox")
    try:
        box.up(osds=3)
        yield Cluster(box, root)
    finally:
        box.down()


def test_plan_notes_what_audit_will_call_wrong(three_osds: Cluster) -> None:
    spec = three_osds.write_spec()
    proc = three_osds.cli("plan", "-f", str(spec), "--output", "json")
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert plan["refusals"] == []
    noted = {(n.split(": ")[0], n.split("(")[1].split(")")[0]) for n in plan["notes"]
             if "audit will call this" in n}
    assert {(f"pool.{p}", "pool-size-one") for p in ("images", "volume", "backups", "vm")} \
        <= noted
    text = three_osds.cli("plan", "-f", str(spec)).stdout
    assert ("Note: pool.vm: audit will call this an error (pool-size-one): size 1: one copy, "
            "with 3 OSDs in") in text
    applied = three_osds.cli("apply", "-f", str(spec), "--yes")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    proc = three_osds.cli("audit", "-f", str(spec), "--output", "json")
    findings = json.loads(proc.stdout)["findings"]
    assert findings, "the size-1 pools are errors to the audit"
    found = {(f["entity"].replace("pool ", "pool.", 1), f["id"]) for f in findings}
    assert found <= noted, f"audit found what plan did not note: {found - noted}"
