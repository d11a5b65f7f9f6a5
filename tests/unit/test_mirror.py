"""Pure logic of RBD mirroring and the sandbox's cluster names (no cluster needed)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cephstack.ceph import mirror
from cephstack.errors import EXIT_BAD_INPUT, SpecError
from cephstack.sandbox.cluster import Sandbox, SandboxArgumentError, SandboxStatus


@pytest.mark.parametrize(("given", "normal"), [
    ("1m", "1m"), ("5m", "5m"), ("60m", "1h"), ("90m", "90m"), ("24h", "1d"), ("1440m", "1d"),
    ("2h", "2h"), ("3d", "3d"), (" 15m ", "15m"),
])
def test_schedule_intervals_are_normalised_as_the_manager_writes_them(given, normal):
    assert mirror.normal_interval(given) == normal


@pytest.mark.parametrize("bad", ["", "0m", "1s", "m", "1.5h", "-1h", "1 h", "10"])
def test_a_bad_schedule_is_refused_by_name(bad):
    with pytest.raises(SpecError, match="mirror schedule"):
        mirror.normal_interval(bad)


def test_mirror_user_caps():
    assert mirror.mirror_user_caps() == {"mon": "profile rbd-mirror", "osd": "profile rbd"}


def test_sandbox_files_are_named_after_the_cluster(tmp_path):
    default = Sandbox(tmp_path / "d")
    assert default.conf.name == "ceph.conf"  # as before: existing sandboxes keep working
    assert default.admin_keyring.name == "ceph.client.admin.keyring"
    box = Sandbox(tmp_path / "a", cluster="site-a")
    assert box.conf == tmp_path / "a" / "site-a.conf"
    assert box.admin_keyring == tmp_path / "a" / "site-a.client.admin.keyring"
    assert box.mirror_keyring("site-a").name == "site-a.client.rbd-mirror.site-a.keyring"


@pytest.mark.parametrize("bad", ["", "a/b", "../x", "-a", "a b", "x" * 64, "a.b"])
def test_a_bad_cluster_name_is_refused(tmp_path, bad):
    with pytest.raises(SandboxArgumentError, match="invalid cluster name") as e:
        Sandbox(tmp_path, cluster=bad)
    assert e.value.exit_code == EXIT_BAD_INPUT


def test_one_cluster_per_directory(tmp_path):
    (tmp_path / "site-a.conf").write_text("mon host = v2:127.0.0.1:1\n")
    with pytest.raises(SandboxArgumentError, match=r"already holds another cluster "
                       r"\(site-a.conf\): one cluster per directory"):
        Sandbox(tmp_path, cluster="site-b").up()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site-a.conf"]  # nothing made


def test_rbd_mirror_daemons_are_known_by_their_keyrings_and_not_part_of_up(tmp_path):
    box = Sandbox(tmp_path, cluster="site-a")
    (tmp_path / "site-a.client.rbd-mirror.site-a.keyring").write_text("")
    (tmp_path / "other.client.rbd-mirror.x.keyring").write_text("")  # not this cluster's
    assert box.mirror_daemons() == ["client.rbd-mirror.site-a"]
    assert box.daemons()[-1] == "client.rbd-mirror.site-a"
    status = SandboxStatus("d", "c", "k", 1, {"mon.a": 1, "mgr.x": 2, "osd.0": 3,
                                              "client.rbd-mirror.site-a": None})
    assert status.up  # the cluster runs; its rbd-mirror is shown apart


def test_a_process_is_ours_only_with_our_binary_id_and_conf(tmp_path):
    """rbd-mirror is matched like the other daemons: binary, --id and -c."""
    box = Sandbox(tmp_path, cluster="site-a")
    sleeper = tmp_path / "sleep.py"
    sleeper.write_text("import time; time.sleep(30)\n")
    # A stand-in whose command line reads like the daemon's: argv[0] "rbd-mirror".
    procs = [subprocess.Popen(["rbd-mirror", "-S", str(sleeper), "--id", ident, "-c", conf],
                              executable=sys.executable)
             for ident, conf in (("rbd-mirror.site-a", str(box.conf)),
                                 ("rbd-mirror.site-a", "/elsewhere/site-a.conf"),
                                 ("rbd-mirror.site-b", str(box.conf)))]
    try:
        deadline = time.monotonic() + 10
        while not all(Path(f"/proc/{p.pid}/cmdline").read_bytes().count(b"--id")
                      for p in procs) and time.monotonic() < deadline:
            time.sleep(0.05)
        daemon = "client.rbd-mirror.site-a"
        assert [box._ours(p.pid, daemon) for p in procs] == [True, False, False]
        assert not box._ours(os.getpid(), daemon)
    finally:
        for p in procs:
            p.kill()
            p.wait()


def test_sandbox_cli_refuses_site_without_rbd_mirror(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "cephstack", "sandbox", "up", "--dir",
                           str(tmp_path), "--site", "x"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == EXIT_BAD_INPUT, proc.stderr
    assert "--site names the rbd-mirror daemon's user" in proc.stderr
    assert list(tmp_path.iterdir()) == []
