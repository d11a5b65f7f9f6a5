"""Release roots (cephstack.sandbox.release): names, where they live, what a command in one
gets. Building and running them is in tests/integration/test_releases.py."""

from __future__ import annotations

import pytest

from cephstack.sandbox import release
from cephstack.sandbox.cluster import Sandbox


def test_releases_and_where_their_roots_live(monkeypatch):
    assert {r: release.release(r).suite for r in release.RELEASES} == {
        "pacific": "bookworm", "reef": "trixie", "tentacle": "forky"}
    monkeypatch.delenv("CEPHSTACK_RELEASES_DIR", raising=False)
    assert str(release.root_path("reef")) == "/var/cache/cephstack/releases/reef"
    monkeypatch.setenv("CEPHSTACK_RELEASES_DIR", "/srv/roots")
    assert str(release.root_path("tentacle")) == "/srv/roots/tentacle"


def test_an_unknown_release_is_refused(tmp_path):
    with pytest.raises(release.ReleaseError, match="unknown Ceph release 'squidward'"):
        Sandbox(tmp_path, release="squidward")


def test_a_command_in_a_root_sees_the_given_paths_and_not_the_hosts_python(monkeypatch):
    argv = release.in_root(release.Path("/r"), ["ceph-mon", "-i", "a"], ["/tmp/box"], "/tmp")
    assert argv[:5] == ["unshare", "--mount", "--propagation", "private", "--"]
    assert argv[-7:] == ["/r", "1", "/tmp/box", "/tmp", "ceph-mon", "-i", "a"]
    monkeypatch.setenv("PYTHONPATH", "/host/site")
    monkeypatch.setenv("PIP_FIND_LINKS", "/opt/wheels")  # a host directory
    monkeypatch.setenv("PIP_INDEX_URL", "https://mirror.example/simple")
    env = release.root_env(PYTHONPATH="/work/main")
    assert env["PYTHONPATH"] == "/work/main" and "PIP_FIND_LINKS" not in env
    assert env["PIP_INDEX_URL"] == "https://mirror.example/simple"
