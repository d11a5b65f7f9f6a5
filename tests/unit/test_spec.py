from pathlib import Path

import pytest

from cephstack.errors import SpecError
from cephstack.spec.catalog import desired_clients
from cephstack.spec.defaults import DEFAULT_SPEC
from cephstack.spec.load import load_spec, parse_size, parse_spec


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as e:
        parse_spec(text, "s.yaml")
    return e.value.problems


def test_default_spec_is_the_seed_layout():
    spec = parse_spec(DEFAULT_SPEC, "/etc/cephstack/cephstack.yaml")
    assert list(spec.pools) == ["images", "volume", "backups", "vm"]
    assert {p.pg_num for p in spec.pools.values()} == {32}
    assert {s.kind: s.user for s in spec.services.values()} == {
        "glance": "glance", "cinder-volume": "cinder-volume",
        "cinder-backup": "cinder-backup", "nova": "nova"}
    assert spec.keyrings.directory == "/var/openstack/ceph"
    assert spec.keyrings.mode == 0o600


def test_compiled_caps_of_the_default_spec():
    spec = parse_spec(DEFAULT_SPEC)
    caps = {e: c.caps.rendered() for e, c in desired_clients(spec).items()}
    assert caps == {
        "client.glance": {"mon": "profile rbd", "osd": "profile rbd pool=images",
                          "mgr": "profile rbd pool=images"},
        "client.cinder-volume": {
            "mon": "profile rbd", "mgr": "profile rbd pool=volume",
            "osd": "profile rbd pool=volume, profile rbd-read-only pool=images"},
        "client.cinder-backup": {"mon": "profile rbd", "osd": "profile rbd pool=backups",
                                 "mgr": "profile rbd pool=backups"},
        "client.nova": {"mon": "profile rbd", "mgr": "profile rbd pool=vm",
                        "osd": "profile rbd pool=vm, profile rbd-read-only pool=images"},
    }


def test_direct_snapshots_give_nova_write_on_images():
    spec = parse_spec(DEFAULT_SPEC.replace("direct_snapshots: false", "direct_snapshots: true"))
    nova = desired_clients(spec)["client.nova"].caps.rendered()
    assert nova["osd"] == "profile rbd pool=images, profile rbd pool=vm"


def test_two_services_sharing_a_user_get_the_union():
    spec = parse_spec("""
pools: {images: {}, volumes: {}, backups: {}}
services:
  glance: {user: glance, pool: images}
  cinder-volume: {user: cinder, pool: volumes}
  cinder-backup: {user: cinder, pool: backups}
""")
    cinder = desired_clients(spec)["client.cinder"]
    assert cinder.services == ("cinder-backup", "cinder-volume")
    assert cinder.caps.rendered()["osd"] == (
        "profile rbd pool=backups, profile rbd pool=volumes, profile rbd-read-only pool=images")


def test_without_glance_nobody_reads_images():
    spec = parse_spec("pools: {vm: {}}\nservices: {nova: {user: nova, pool: vm}}\n")
    assert desired_clients(spec)["client.nova"].caps.rendered()["osd"] == "profile rbd pool=vm"


@pytest.mark.parametrize("text, expected", [
    ("pools:\n  images: {pg_num: 32, colour: red}\n",
     "s.yaml:2: pools.images.colour: unknown key"),
    ("pools:\n  images:\n    pg_num: many\n", "s.yaml:3: pools.images.pg_num: expected an integer"),
    ("pools:\n  images: {pg_num: true}\n", "s.yaml:2: pools.images.pg_num: expected an integer"),
    ("pools:\n  a: {}\n  a: {}\n", "s.yaml:3: pools.a: duplicate key (first at line 2)"),
    ("pools:\n  .hidden: {}\n", "s.yaml:2: pools..hidden: invalid pool name"),
    ("pools: {a: {}}\nservices:\n  glance: {user: glance, pool: b}\n",
     "s.yaml:3: services.glance.pool: pool 'b' is not declared under pools"),
    ("pools: {a: {}}\nservices:\n  glance: {user: 'no spaces', pool: a}\n",
     "s.yaml:3: services.glance.user: invalid user name"),
    ("pools: {a: {}}\nservices:\n  swift: {user: s, pool: a}\n",
     "s.yaml:3: services.swift: unknown key"),
    ("pools: {a: {}}\nservices:\n  glance: {pool: a}\n",
     "s.yaml:3: services.glance: missing 'user'"),
    ("pools: {a: {}}\nservices: {glance: {user: g, pool: a}}\nclients:\n  g: {caps: {mon: x}}\n",
     "s.yaml:4: clients.g: user 'g' is already the user of service glance"),
    ("clients:\n  t:\n    caps: {osd: 'rwx pool=a'}\n",
     "s.yaml:3: clients.t.caps.osd: grant 'rwx pool=a' must start with 'allow' or 'profile'"),
    ("clients:\n  t:\n    caps: {rgw: 'allow r'}\n", "s.yaml:3: clients.t.caps.rgw: unknown key"),
    ("keyrings:\n  mode: 0644\n", "s.yaml:2: keyrings.mode: keyring files hold keys"),
    ("pools:\n  a: {size: 2, min_size: 3}\n", "s.yaml:2: pools.a.min_size: min_size 3 exceeds"),
    ("pools:\n  a: {target_size_ratio: 0.2}\n",
     "s.yaml:2: pools.a.target_size_ratio: only applies with autoscale: true"),
    ("pools: [a, b]\n", "s.yaml:1: pools: expected a mapping, got a list"),
    ("pools:\n  a: {pg_num: 32\n", "s.yaml:3: not valid YAML"),
    ("cluster:\n  client: admin\n", "s.yaml:2: cluster.client: expected client.<name>"),
])
def test_problems_name_file_line_and_field(text, expected):
    found = problems(text)
    assert any(p.startswith(expected) for p in found), found


def test_every_problem_is_reported_at_once():
    found = problems("pools:\n  a: {pg_num: x}\n  b: {size: 0}\nkeyrings: {mode: '0777'}\n")
    assert len(found) == 3


def test_relative_paths_are_relative_to_the_spec(tmp_path: Path):
    f = tmp_path / "sub" / "spec.yaml"
    f.parent.mkdir()
    f.write_text("cluster: {conf: ../ceph.conf}\nkeyrings: {directory: keys}\n")
    spec = load_spec(f)
    assert spec.cluster.conf == str(tmp_path / "ceph.conf")
    assert spec.keyrings.directory == str(tmp_path / "sub" / "keys")


def test_unreadable_spec_is_a_spec_error(tmp_path: Path):
    with pytest.raises(SpecError, match="cannot read"):
        load_spec(tmp_path / "missing.yaml")


def test_quota_and_mode_forms():
    spec = parse_spec("pools:\n  a: {quota: {max_bytes: 10G, max_objects: 1000}}\n"
                      "keyrings: {mode: '0640'}\n")
    assert spec.pools["a"].quota.max_bytes == 10 * 1024**3
    assert spec.keyrings.mode == 0o640
    assert parse_size("512MiB") == 512 * 1024**2
