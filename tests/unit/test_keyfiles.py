"""The one writer and reader of key files, as root: no links followed, only regular files,
keys as Ceph reads them, no stale temp files, safe modes whatever the umask."""

from __future__ import annotations

import fcntl
import os
import stat
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from cephstack.adopt.audit import audit
from cephstack.errors import CephstackError
from cephstack.keyfiles import (
    FileState,
    Secret,
    keyring_key,
    keyring_text,
    read_keyring_file,
    read_keyring_files,
    set_file_access,
    write_atomic,
)
from cephstack.plan.make import WriteKeyring, make_plan
from cephstack.plan.state import ClusterState
from tests.unit.test_plan import SPEC, converged

K1, K2 = "AQD" + "1" * 37, "AQD" + "2" * 37
ENTITY = "client.glance"


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    d = tmp_path / "keys"
    d.mkdir(mode=0o750)
    os.chmod(d, 0o750)
    return d


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


# -- links, FIFOs, devices at a keyring path ----------------------------------------


def test_a_symlink_at_a_keyring_path_is_refused_and_its_target_untouched(keys, tmp_path):
    target = tmp_path / "elsewhere"
    target.write_text("precious\n")
    os.chmod(target, 0o644)
    link = keys / f"ceph.{ENTITY}.keyring"
    link.symlink_to(target)
    with pytest.raises(CephstackError, match=r"is a symbolic link to .*elsewhere") as e:
        read_keyring_file(str(link), ENTITY)
    assert str(link) in str(e.value)
    with pytest.raises(CephstackError, match="symbolic link"):
        write_atomic(str(link), keyring_text(ENTITY, Secret(K1)), 0o600)
    with pytest.raises(CephstackError, match="symbolic link"):
        set_file_access(str(link), 0o600, "root", "root")
    assert target.read_text() == "precious\n" and mode_of(target) == 0o644
    assert link.is_symlink()
    assert sorted(p.name for p in keys.iterdir()) == [link.name]  # no temp file left


def test_a_dangling_symlink_is_refused_too(keys, tmp_path):
    link = keys / f"ceph.{ENTITY}.keyring"
    link.symlink_to(tmp_path / "would-be-created")
    with pytest.raises(CephstackError, match="symbolic link"):
        read_keyring_file(str(link), ENTITY)
    with pytest.raises(CephstackError, match="symbolic link"):
        write_atomic(str(link), keyring_text(ENTITY, Secret(K1)), 0o600)
    assert not (tmp_path / "would-be-created").exists()


def test_a_fifo_at_a_keyring_path_is_refused_without_blocking(keys):
    fifo = keys / f"ceph.{ENTITY}.keyring"
    os.mkfifo(fifo)
    outcome: list[BaseException] = []

    def attempt() -> None:
        for call in (lambda: read_keyring_file(str(fifo), ENTITY),
                     lambda: set_file_access(str(fifo), 0o600, None, None),
                     lambda: write_atomic(str(fifo), "x", 0o600)):
            try:
                call()
            except CephstackError as e:
                outcome.append(e)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(10)
    if worker.is_alive():  # unblock the thread before failing
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("reading a FIFO keyring path blocked")
    assert len(outcome) == 3
    assert all("FIFO" in str(e) and str(fifo) in str(e) for e in outcome)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_a_device_at_a_keyring_path_is_refused(keys):
    with pytest.raises(CephstackError, match="/dev/null is a character device"):
        read_keyring_file("/dev/null", ENTITY)
    device = keys / f"ceph.{ENTITY}.keyring"
    try:
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # what /dev/null is
    except PermissionError:
        pytest.skip("cannot create a device node here")
    before = mode_of(device)
    with pytest.raises(CephstackError, match="character device"):
        set_file_access(str(device), 0o600, None, None)
    with pytest.raises(CephstackError, match="character device"):
        write_atomic(str(device), "x", 0o600)
    assert mode_of(device) == before and stat.S_ISCHR(os.lstat(device).st_mode)


def test_set_file_access_changes_the_file_itself(keys):
    f = keys / f"ceph.{ENTITY}.keyring"
    f.write_text(keyring_text(ENTITY, Secret(K1)))
    os.chmod(f, 0o644)
    set_file_access(str(f), 0o600, "root", "root")
    assert mode_of(f) == 0o600


def test_a_directory_at_the_target_is_refused(keys):
    (keys / "x.keyring").mkdir()
    with pytest.raises(CephstackError, match="is a directory"):
        write_atomic(str(keys / "x.keyring"), "x", 0o600)


def test_a_symlinked_keyring_directory_is_refused(tmp_path):
    real = tmp_path / "real"
    real.mkdir(mode=0o750)
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(CephstackError, match=r"link is a symbolic link"):
        write_atomic(str(tmp_path / "link" / "k.keyring"), "x", 0o600)
    assert list(real.iterdir()) == []


def test_a_file_where_a_directory_should_be_and_a_huge_keyring_are_refused(keys):
    (keys / "plain").write_text("x")
    with pytest.raises(CephstackError, match="plain is a regular file"):
        write_atomic(str(keys / "plain" / "k.keyring"), "x", 0o600)
    huge = keys / f"ceph.{ENTITY}.keyring"
    huge.write_bytes(b"#" * (2 << 20))
    with pytest.raises(CephstackError, match="larger than"):
        read_keyring_file(str(huge), ENTITY)


# -- keys as Ceph reads them ----------------------------------------------------------


def test_the_last_section_of_an_entity_wins():
    text = f"[{ENTITY}]\n\tkey = {K1}\n[client.nova]\n\tkey = {K1}\n[{ENTITY}]\n\tkey = {K2}\n"
    assert keyring_key(text, ENTITY) == Secret(K2)
    assert keyring_key(text, "client.nova") == Secret(K1)
    # A later section without a key line does not hide the earlier key (Ceph merges them).
    assert keyring_key(f"[{ENTITY}]\nkey = {K1}\n[{ENTITY}]\ncaps mon = \"allow r\"\n",
                       ENTITY) == Secret(K1)


def test_a_file_with_several_sections_is_marked_and_rewritten(keys):
    f = keys / f"ceph.{ENTITY}.keyring"
    f.write_text(f"[{ENTITY}]\n\tkey = {K2}\n[{ENTITY}]\n\tkey = {K1}\n")
    state = read_keyring_file(str(f), ENTITY)
    assert state.key == Secret(K1) and state.several_sections
    f.write_text(keyring_text(ENTITY, Secret(K1)))
    single = read_keyring_file(str(f), ENTITY)
    assert single.key == Secret(K1) and not single.several_sections
    assert single.dir_mode is not None and stat.S_IMODE(single.dir_mode) == 0o750

    cluster = converged()
    on_disk = cluster.keyring_files[ENTITY]
    cluster.keyring_files[ENTITY] = replace(on_disk, several_sections=True)
    plan = make_plan(SPEC, cluster)
    [action] = plan.actions
    assert isinstance(action, WriteKeyring) and action.entity == ENTITY
    assert "several sections" in action.reason
    assert cluster.fingerprint() != converged().fingerprint()


# -- stale temp files -------------------------------------------------------------------


def test_stale_temp_files_of_keyrings_are_removed_by_the_next_write(keys, tmp_path):
    stale = keys / f".ceph.{ENTITY}.keyring.ab3_z9x0.tmp"
    stale.write_text(keyring_text(ENTITY, Secret(K1)))
    other_stale = keys / ".ceph.client.nova.keyring.q1w2e3r4.tmp"
    other_stale.write_text(keyring_text("client.nova", Secret(K1)))
    foreign = {
        ".ceph.client.nova.keyring.tmp": "no random part",  # not cephstack's pattern
        "notes.abcdefgh.tmp": "not a dot file",
        ".notes.abcdefgh.tmp": "not a key file's temp",
        ".ceph.client.cinder.keyring.TOOLONG12.tmp": "not 8 characters",
    }
    for name, text in foreign.items():
        (keys / name).write_text(text)
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    (keys / ".ceph.client.x.keyring.linklink.tmp").symlink_to(victim)
    busy = keys / ".ceph.client.y.keyring.busybusy.tmp"  # a running writer holds it
    busy.write_text("")
    held = os.open(busy, os.O_RDONLY)
    fcntl.flock(held, fcntl.LOCK_EX)
    try:
        write_atomic(str(keys / "ceph.client.cinder.keyring"), "x", 0o600)
    finally:
        os.close(held)
    names = {p.name for p in keys.iterdir()}
    assert stale.name not in names and other_stale.name not in names
    assert set(foreign) | {".ceph.client.x.keyring.linklink.tmp", busy.name,
                           "ceph.client.cinder.keyring"} == names
    assert victim.read_text() == "keep me\n"


def test_an_empty_temp_file_is_stale_only_once_old(keys):
    fresh = keys / ".ceph.client.a.keyring.fresh___.tmp"  # a writer about to lock it
    old = keys / ".ceph.client.b.keyring.old_____.tmp"  # a writer killed before writing
    fresh.write_text("")
    old.write_text("")
    os.utime(old, (1, 1))
    write_atomic(str(keys / "ceph.client.c.keyring"), "x", 0o600)
    assert fresh.exists() and not old.exists()


def test_concurrent_writes_into_one_missing_directory(tmp_path):
    keydir = tmp_path / "new" / "keys"
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for round_ in range(20):
                write_atomic(str(keydir / f"ceph.client.u{n}.keyring"), f"{round_}\n", 0o600)
        except BaseException as e:  # noqa: BLE001 - collected for the assertion
            errors.append(e)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(p.name for p in keydir.iterdir()) == sorted(
        f"ceph.client.u{n}.keyring" for n in range(8))


def test_observing_a_keyring_removes_its_stale_temp_files(keys):
    stale = keys / f".ceph.{ENTITY}.keyring.k1ll3d__.tmp"  # left by a SIGKILL mid-write
    stale.write_text(keyring_text(ENTITY, Secret(K1)))
    assert read_keyring_file(str(keys / f"ceph.{ENTITY}.keyring"), ENTITY).exists is False
    assert not stale.exists()


def test_many_keyrings_are_read_with_one_listing_of_their_directory(keys, monkeypatch):
    for n in range(50):
        write_atomic(str(keys / f"ceph.client.u{n}.keyring"),
                     keyring_text(f"client.u{n}", Secret(K1)), 0o600)
    stale = keys / ".ceph.client.u7.keyring.k1ll3d__.tmp"
    stale.write_text(keyring_text("client.u7", Secret(K2)))
    listings = []
    real = os.listdir
    monkeypatch.setattr(os, "listdir", lambda fd: listings.append(fd) or real(fd))
    paths = {f"client.u{n}": str(keys / f"ceph.client.u{n}.keyring") for n in range(60)}
    found = read_keyring_files(paths)
    assert len(listings) == 1 and not stale.exists()
    assert [found[f"client.u{n}"].exists for n in (0, 49, 50)] == [True, True, False]
    assert found["client.u7"].key == Secret(K1) and found["client.u7"].mode == 0o600
    assert found["client.u50"] == read_keyring_file(paths["client.u50"], "client.u50")


# -- modes and directories ------------------------------------------------------------------


def test_umask_000_gives_safe_directories_and_files(tmp_path):
    old = os.umask(0)
    try:
        key = tmp_path / "a" / "b" / "ceph.client.x.keyring"
        write_atomic(str(key), "x", 0o600)
        spec = tmp_path / "specs" / "cephstack.yaml"
        write_atomic(str(spec), "pools: {}\n", 0o644, dir_mode=0o755)
    finally:
        os.umask(old)
    assert mode_of(tmp_path / "a") == mode_of(tmp_path / "a" / "b") == 0o750
    assert mode_of(key) == 0o600
    assert mode_of(tmp_path / "specs") == 0o755 and mode_of(spec) == 0o644


def test_an_existing_directory_keeps_its_mode(keys):
    os.chmod(keys, 0o700)
    write_atomic(str(keys / "k.keyring"), "x", 0o600)
    assert mode_of(keys) == 0o700


@pytest.mark.parametrize("dir_mode", [0o777, 0o770, 0o1777, 0o757])
def test_keys_are_never_written_into_a_directory_others_may_write(keys, dir_mode):
    os.chmod(keys, dir_mode)
    with pytest.raises(CephstackError, match="writable by group or others"):
        write_atomic(str(keys / "k.keyring"), "x", 0o600)
    with pytest.raises(CephstackError, match="writable by group or others"):
        write_atomic(str(keys / "k.keyring"), "x", 0o644, secret=True)
    assert list(keys.iterdir()) == []
    write_atomic(str(keys / "public.conf"), "x", 0o644)  # not a key: allowed
    assert mode_of(keys / "public.conf") == 0o644


# -- the planner and the audit see unsafe directories and unknown accounts ------------------


def test_a_writable_keyring_directory_is_a_refusal_and_a_finding():
    state = converged()
    for entity, f in list(state.keyring_files.items()):
        state.keyring_files[entity] = replace(f, dir_mode=stat.S_IFDIR | 0o777)
    plan = make_plan(SPEC, state)
    assert plan.refusals == ("keyring directory /k is writable by group or others (mode "
                             "0777): another user could replace a keyring in it; fix: chmod "
                             "go-w /k",)
    found = {(f.id, f.entity) for f in audit(state, SPEC, state.keyring_files)}
    assert ("keyring-dir-writable", "/k") in found
    for entity, f in list(state.keyring_files.items()):
        state.keyring_files[entity] = replace(f, dir_mode=stat.S_IFDIR | 0o750)
    assert make_plan(SPEC, state).refusals == ()
    for entity, f in list(state.keyring_files.items()):
        state.keyring_files[entity] = replace(f, dir_mode=stat.S_IFLNK | 0o777)
    assert "keyring directory /k is a symbolic link" in make_plan(SPEC, state).refusals[0]


def test_unknown_owner_and_group_are_refused_by_the_plan():
    from cephstack.spec.defaults import DEFAULT_SPEC
    from cephstack.spec.load import parse_spec

    spec = parse_spec(DEFAULT_SPEC.replace("/var/openstack/ceph", "/k").replace(
        "  # owner: root\n  # group: root", "  owner: nosuchuser\n  group: root"))
    assert (spec.keyrings.owner, spec.keyrings.group) == ("nosuchuser", "root")
    state = replace(ClusterState("fsid", osds_in=1),
                    accounts={"user nosuchuser": False, "group root": True})
    plan = make_plan(spec, state)
    assert [r for r in plan.refusals if "keyrings." in r] == [
        "keyrings.owner: no user 'nosuchuser' on this host; fix: create it or name another "
        "user"]
    assert FileState("/k/x", False).dir_mode is None  # a missing directory is no refusal
