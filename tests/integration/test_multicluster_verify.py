"""`cephstack verify` of a spec with `clusters:`, against two real sandboxes each running
its rbd-mirror daemon (the `two_clusters` fixture: site-a, site-b): every cluster's
workflows named per cluster, a backup on the other cluster restored, Nova's clone from its
zone's Glance store, the mirroring failover drill (orderly through the CLI, forced with the
primary's daemons stopped), and a cluster that is down while the other is verified."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cephstack.spec.fleet import split
from cephstack.spec.load import load_spec
from cephstack.verify import across
from cephstack.verify.progress import Progress

pytestmark = pytest.mark.slow

SPEC = """\
clusters:
  site-a: {{conf: {a}/site-a.conf, keyring: {a}/site-a.client.admin.keyring}}
  site-b:
    conf: {b}/site-b.conf
    keyring: {b}/site-b.client.admin.keyring
    connect_timeout: 3
pools:
  images:    {{cluster: site-a, pg_num: 8}}
  images-b:  {{cluster: site-b, pg_num: 8}}
  volumes:   {{cluster: site-a, pg_num: 8}}
  volumes-b: {{cluster: site-b, pg_num: 8}}
  vm-b:      {{cluster: site-b, pg_num: 8}}
  backups:   {{cluster: site-b, pg_num: 8}}
services:
  glance:        {{user: glance, pools: [images, images-b]}}
  cinder-volume: {{user: cinder-volume, pools: [volumes, volumes-b]}}
  cinder-backup: {{user: cinder-backup, pool: backups}}
  nova:          {{user: nova, pool: vm-b}}
mirroring: {{primary: site-a, secondary: site-b, pools: [volumes], schedule: 5m}}
keyrings: {{directory: {keys}}}
"""


def _keys(clusters) -> list[str]:
    keys = []
    for c in clusters:
        if c.box.status().up:
            keys += c.keys()
    return keys


def cli(clusters, *args: str) -> subprocess.CompletedProcess[str]:
    """The real CLI as a process; no cephx key of a running sandbox in its output."""
    proc = subprocess.run([sys.executable, "-m", "cephstack", *args], capture_output=True,
                          text=True, cwd=clusters[0].workdir, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    for key in _keys(clusters):
        assert key not in proc.stdout + proc.stderr, "a key was printed"
    return proc


@pytest.fixture(scope="module")
def applied(two_clusters):
    a, b = two_clusters
    spec = a.workdir / "two-sites.yaml"
    spec.write_text(SPEC.format(a=a.box.dir, b=b.box.dir, keys=a.workdir / "keys"))
    proc = cli(two_clusters, "apply", "-f", str(spec), "--yes")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return two_clusters, spec


@pytest.fixture(scope="module")
def verified(applied):
    clusters, spec = applied
    proc = cli(clusters, "verify", "-f", str(spec), "--output", "json")
    return proc, json.loads(proc.stdout)


def _steps(doc: dict, prefix: str) -> dict[str, dict]:
    return {f"{s['service']}: {s['name']}": s for s in doc["steps"]
            if s["service"].startswith(prefix)}


def test_verify_of_two_clusters_passes_and_names_each(verified):
    proc, doc = verified
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert doc["passed"] is True and doc["failed"] == []
    assert set(doc["clusters"]) == {"site-a", "site-b"}
    for name, part in doc["clusters"].items():
        assert part["passed"] is True and part["error"] is None
        assert all(s["service"].startswith(f"{name}/") for s in part["steps"])
    a, b = _steps(doc, "site-a/"), _steps(doc, "site-b/")
    assert a["site-a/glance: upload image (create, write, snap, protect)"]["result"] == "pass"
    assert b["site-b/glance: upload image (create, write, snap, protect)"]["result"] == "pass"
    # Each cluster's own workflows: site-b's Nova boots from site-b's Glance pool.
    boot = b["site-b/nova: boot from image (copy-on-write clone)"]
    assert boot["result"] == "pass" and "child of images-b/" in boot["detail"]
    assert not any(s["service"] == "site-a/nova" for s in doc["steps"])  # no Nova on site-a
    # One JSON document on stdout; every step's line on stderr as it finished.
    assert "  PASS  site-b/glance: upload image" in proc.stderr
    assert "  PASS  site-a->site-b/cinder-volume: failover drill: promote on site-b" \
        in proc.stderr
    assert all(s["result"] != "fail" for s in doc["steps"])


def test_backup_on_the_other_cluster_is_restored_byte_equal(verified):
    _, doc = verified
    steps = _steps(doc, "site-a->site-b/cinder-backup")
    names = [n for n in steps if n.endswith("[site-a/rbd-volumes]")]
    assert len(names) == 4, list(steps)
    for name in names:
        assert steps[name]["result"] == "pass", steps[name]
    full = steps["site-a->site-b/cinder-backup: full backup (source as Cinder's user) "
                 "[site-a/rbd-volumes]"]
    assert full["detail"].startswith("volumes/volume-") and "-> backups/" in full["detail"]
    restored = steps["site-a->site-b/cinder-backup: restore the incremental backup "
                     "[site-a/rbd-volumes]"]
    assert restored["detail"].startswith("volumes/volume-")  # a new volume on site-a
    assert "matches the source at backup 2" in restored["detail"]
    # Each side as its own user, on its own cluster.
    connects = {s["service"]: s["detail"] for s in doc["across"]["steps"]
                if s["name"] == "connect with its own keyring"}
    assert "client.cinder-volume on site-a" in connects["site-a/cinder-volume"]
    assert "client.cinder-backup on site-b" in connects["site-a->site-b/cinder-backup"]


def test_nova_clones_from_the_glance_store_of_its_own_cluster(verified, applied):
    _, doc = verified
    (a, b), _ = applied
    [clone] = [s for s in doc["across"]["steps"] if s["service"] == "site-b/nova"
               and s["name"].startswith("boot from the zone's Glance store")]
    assert clone["result"] == "pass"
    assert clone["name"] == ("boot from the zone's Glance store images-b (copy-on-write, "
                             "parent in site-b)")
    with b.admin() as conn:
        fsid_b = conn.fsid()
    with a.admin() as conn:
        fsid_a = conn.fsid()
    assert f"fsid {fsid_b}" in clone["detail"] and fsid_a not in clone["detail"]
    assert "child of images-b/" in clone["detail"]


def test_mirroring_drill_fails_over_and_back(verified, applied):
    _, doc = verified
    (a, b), _ = applied
    drill = [s for s in doc["across"]["steps"] if s["service"] == "site-a->site-b/cinder-volume"]
    names = [s["name"].removeprefix("failover drill: ").removesuffix(" [volumes]")
             for s in drill]
    assert names[:5] == ["create and write the volume on site-a", "enable snapshot mirroring",
                         "take a mirror snapshot", "replicated to site-b", "byte-equal on site-b"]
    for expected in ("demote on site-a", "promote on site-b",
                     "site-b serves the volume read-write", "promote on site-a",
                     "byte-equal on site-b again", "clean up"):
        assert expected in names
    assert all(s["result"] == "pass" for s in drill)
    served = next(s for s in drill if "site-b serves the volume" in s["name"])
    assert "as client.cinder-volume" in served["detail"]
    # Nothing of the run is left on either cluster.
    for c, pools in ((a, ["images", "volumes"]), (b, ["images-b", "volumes", "volumes-b",
                                                      "vm-b", "backups"])):
        with c.admin() as conn:
            for pool in pools:
                assert [n for n in conn.rbd("list", pool) if "-c5ac-5eed-" in n] == [], pool


def test_forced_failover_drill_with_the_primary_down(applied):
    """The drill lane verify runs, with an outage: site-a's monitor, manager and rbd-mirror
    stopped, so the secondary is promoted by force; then site-a is back and fails back."""
    from cephstack.session.connect import Settings, connect

    (a, b), spec_path = applied
    spec = load_spec(str(spec_path))
    parts = split(spec)
    [lane] = across.lanes(spec, parts, "cinder-volume", a.outage())
    assert lane.clusters == ("site-a", "site-b") and lane.where("cinder-volume") == \
        "site-a->site-b"
    shown = io.StringIO()
    with connect(Settings(), parts["site-a"]) as ca, connect(Settings(), parts["site-b"]) as cb:
        sites = across.Sites(parts, {"site-a": ca, "site-b": cb}, 10)
        steps = lane.run(sites, Progress(shown, tty=False, ticker=False))
    names = [s.name for s in steps]
    assert "failover drill: forced promote on site-b [volumes]" in names
    assert "failover drill: site-b serves the volume read-write [volumes]" in names
    assert "failover drill: site-a serves the volume read-write again [volumes]" in names
    assert all(s.result == "pass" for s in steps), [(s.name, s.error) for s in steps]
    assert "PASS  cinder-volume: failover drill: forced promote on site-b" in shown.getvalue()
    assert a.box.status().up


def test_cleanup_covers_every_cluster(applied):
    clusters, spec = applied
    proc = cli(clusters, "verify", "-f", str(spec), "--cleanup", "--output", "json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert set(doc["clusters"]) == {"site-a", "site-b"}
    assert all(c["error"] is None and c["removed"] == [] for c in doc["clusters"].values()), doc


def test_a_stopped_cluster_fails_clearly_while_the_other_is_verified(applied):
    """Last: site-b is stopped for good (the fixture's teardown is fine with it)."""
    clusters, spec = applied
    a, b = clusters
    b.box.stop_daemon("client.rbd-mirror.site-b")
    b.box.down()
    proc = cli(clusters, "verify", "-f", str(spec), "--output", "json")
    doc = json.loads(proc.stdout)
    assert proc.returncode == 3, proc.stderr[-2000:]  # unreachable
    assert doc["passed"] is False and "site-b" in doc["failed"] and "site-a" not in doc["failed"]
    site_b = doc["clusters"]["site-b"]
    assert site_b["error"]["kind"] == "unreachable"
    assert "monitor" in (site_b["error"]["hint"] or "")
    [down] = [s for s in doc["clusters"]["site-b"].get("steps", doc["steps"])
              if s["service"] == "site-b/cluster" and s["name"] == "connect as the admin"]
    assert down["result"] == "fail" and "site-b" in down["cause"]
    site_a = doc["clusters"]["site-a"]
    assert site_a["passed"] is True
    assert any(s["name"] == "upload image (create, write, snap, protect)"
               and s["service"] == "site-a/glance" and s["result"] == "pass"
               for s in site_a["steps"])
    # The checks across both clusters fail, naming the cluster that could not be reached.
    cross = [s for s in doc["across"]["steps"] if s["service"].endswith("/cluster")]
    assert cross and all(s["result"] == "fail" and s["error"].startswith("site-b: ")
                         for s in cross)
    assert "  FAIL  site-b/cluster: connect as the admin" in proc.stderr
    text = cli(clusters, "verify", "-f", str(spec), "--only", "glance")
    assert text.returncode == 3
    assert "== cluster site-a" in text.stdout and "Verify passed" in text.stdout
    assert "error: site-b:" in text.stdout and "FAILED: site-b" in text.stdout
