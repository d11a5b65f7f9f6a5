"""Audit and import as tables: observed state -> findings / spec."""

from __future__ import annotations

import pytest

from cephstack.adopt.audit import ERROR, audit, exit_code, recognise
from cephstack.adopt.describe import import_spec
from cephstack.keyfiles import FileState, Secret
from cephstack.plan.make import make_plan
from cephstack.plan.state import ClientState, ClusterState
from cephstack.spec.defaults import DEFAULT_SPEC
from cephstack.spec.load import ClusterSettings, parse_spec
from tests.unit.test_plan import converged, pool

SEED = {"glance": {"mon": "allow r", "osd": "allow rwx pool=images"},
        "cinder-volume": {"mon": "allow r", "osd": "allow rwx pool=volume"},
        "cinder-backup": {"mon": "allow r", "osd": "allow rwx pool=volume, allow rwx pool=backups"},
        "nova": {"mon": "allow r", "osd": "allow rwx pool=vm"}}


def seed_state(**clients) -> ClusterState:
    caps = {**SEED, **clients}
    return ClusterState(
        "fsid", {p: pool(p, apps=()) for p in ("images", "volume", "backups", "vm")},
        {f"client.{u}": ClientState(f"client.{u}", c, Secret(f"key-{u}"))
         for u, c in caps.items()}, osds_in=1)


def ids(findings) -> set[tuple[str, str]]:
    return {(f.id, f.entity) for f in findings}


def test_the_seed_layout():
    found = audit(seed_state())
    assert ids(found) == (
        {("mon-cannot-blocklist", f"client.{u}") for u in SEED}
        | {("no-cow-clone-from-images", "client.cinder-volume"),
           ("no-cow-clone-from-images", "client.nova"),
           ("glance-cannot-unprotect", "client.glance")}
        | {("pool-without-rbd-application", f"pool {p}")
           for p in ("images", "volume", "backups", "vm")})
    assert exit_code(found) == 2
    assert found[0].severity == ERROR  # errors first


def test_a_converged_default_spec_is_clean():
    spec = parse_spec(DEFAULT_SPEC)
    assert audit(converged(spec), spec) == []
    assert audit(converged(spec)) == []  # recognised by name, without the spec
    assert exit_code([]) == 0


@pytest.mark.parametrize("mon", ["profile rbd-mirror", "profile rbd-mirror-peer"])
def test_the_mirroring_profiles_can_blocklist(mon):
    """rbd-mirror's own user and the bootstrap peer user (profile rbd-mirror[-peer]) may
    blocklist a dead client as profile rbd may (measured on a Pacific monitor): not a
    finding on the users cephstack creates for mirroring."""
    state = seed_state(**{"rbd-mirror.central": {"mon": mon, "osd": "profile rbd"}})
    assert ("mon-cannot-blocklist", "client.rbd-mirror.central") not in ids(audit(state))
    state = seed_state(**{"rbd-mirror.central": {"mon": "allow r", "osd": "profile rbd"}})
    assert ("mon-cannot-blocklist", "client.rbd-mirror.central") in ids(audit(state))


def test_recognise_assigns_pools_to_services():
    roles, images = recognise(seed_state(), None)
    assert images == "images"
    assert {r.service: r.pools for r in roles} == {
        "glance": ("images",), "cinder-volume": ("volume",),
        "cinder-backup": ("backups",), "nova": ("vm",)}


@pytest.mark.parametrize("caps, finding", [
    ({"mon": "profile rbd", "osd": "allow rwx"}, "osd-not-pool-restricted"),
    ({"mon": "allow *", "osd": "allow *"}, "osd-not-pool-restricted"),
    ({"mon": "profile rbd", "osd": "profile rbd pool=vm"}, "no-cow-clone-from-images"),
])
def test_nova_caps(caps, finding):
    state = seed_state(nova=caps)
    assert finding in {f.id for f in audit(state) if f.entity == "client.nova"}


def test_nova_direct_snapshots_need_write_on_images():
    spec = parse_spec(DEFAULT_SPEC.replace("direct_snapshots: false", "direct_snapshots: true"))
    state = converged(parse_spec(DEFAULT_SPEC))  # nova still has read-only images
    assert ids(audit(state, spec)) == {("nova-no-direct-snapshots", "client.nova")}


def test_shared_keys_and_users():
    state = seed_state()
    state.clients["client.nova"] = ClientState("client.nova", SEED["nova"], Secret("key-glance"))
    assert ("shared-key", "client.glance, client.nova") in ids(audit(state))
    spec = parse_spec("pools: {images: {}, volume: {}, backups: {}}\nservices:\n"
                      "  glance: {user: glance, pool: images}\n"
                      "  cinder-volume: {user: cinder, pool: volume}\n"
                      "  cinder-backup: {user: cinder, pool: backups}\n")
    assert ("shared-user", "client.cinder") in ids(audit(converged(spec), spec))


def test_pools_on_a_real_cluster():
    spec = parse_spec(DEFAULT_SPEC)
    state = converged(spec)
    for name in state.pools:
        state.pools[name] = pool(name, size=3, min_size=2)
    state.pools["vm"] = pool("vm", pg=48, size=1)
    state.pools["images"] = pool("images", size=2, min_size=1)
    object.__setattr__(state, "osds_in", 3)
    assert ids(audit(state, spec)) == {("pool-size-one", "pool vm"),
                                       ("pg-num-not-power-of-two", "pool vm"),
                                       ("pool-min-size-one", "pool images")}


def test_keyring_files_and_backup_snapshots():
    state = seed_state()
    files = {"client.nova": FileState("/k/nova", True, Secret("key-nova"), 0o644),
             "client.glance": FileState("/k/glance", True, Secret("old"), 0o600)}
    snaps = {"volume/volume-1": [f"backup.{'a' * 8}-{'b' * 4}-{'c' * 4}-{'d' * 4}-{'e' * 12}"
                                 f".snap.1700000000.{n}" for n in range(2)]}
    found = ids(audit(seed_state(), None, files, snaps))
    assert {("keyring-readable-by-others", "/k/nova"), ("keyring-key-mismatch", "/k/glance"),
            ("backup-snapshots-pile-up", "volume/volume-1")} <= found
    assert state  # the state itself is untouched


def test_import_as_is_then_plan_is_empty():
    state = seed_state()
    spec = parse_spec(import_spec(state, ClusterSettings("/c", "/k"), None, fix=False))
    assert spec.services == {}
    assert set(spec.clients) == set(SEED)
    assert {p.init for p in spec.pools.values()} == {False}
    assert make_plan(spec, state).empty


def test_import_fix_compiles_services():
    state = seed_state()
    spec = parse_spec(import_spec(state, ClusterSettings("/c", "/k"), "/keys", fix=True))
    assert {k: (s.user, s.pools) for k, s in spec.services.items()} == {
        "glance": ("glance", ("images",)), "cinder-volume": ("cinder-volume", ("volume",)),
        "cinder-backup": ("cinder-backup", ("backups",)), "nova": ("nova", ("vm",))}
    plan = make_plan(spec, state)
    kinds = {(a.kind, a.address) for a in plan.actions}
    assert {("update_caps", f"client.{u}") for u in SEED} <= kinds
    assert [a.address for a in plan.disruptive] == ["client.cinder-backup"]
