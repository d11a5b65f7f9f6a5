"""Import of the upstream rbd-openstack guide's layout: one client.cinder for Cinder and
Nova (cephstack/adopt/describe.py)."""

from __future__ import annotations

from cephstack.adopt.describe import Layout, import_spec, read_layout
from cephstack.keyfiles import Secret
from cephstack.plan.make import make_plan
from cephstack.plan.state import ClientState, ClusterState
from cephstack.spec.load import ClusterSettings, parse_spec
from tests.unit.test_plan import pool

GUIDE = {
    "glance": {"mon": "profile rbd", "osd": "profile rbd pool=images",
               "mgr": "profile rbd pool=images"},
    "cinder": {"mon": "profile rbd", "osd": "profile rbd pool=volumes, profile rbd pool=vms, "
               "profile rbd-read-only pool=images",
               "mgr": "profile rbd pool=volumes, profile rbd pool=vms"},
    "cinder-backup": {"mon": "profile rbd", "osd": "profile rbd pool=backups",
                      "mgr": "profile rbd pool=backups"},
}
STATE = ClusterState(
    "fsid", {p: pool(p) for p in ("images", "volumes", "backups", "vms")},
    {f"client.{u}": ClientState(f"client.{u}", c, Secret(f"key-{u}")) for u, c in GUIDE.items()},
    osds_in=1)


def _services(layout: Layout | None = None, fix: bool = True) -> dict:
    spec = parse_spec(import_spec(STATE, ClusterSettings("/c", "/k"), None, fix,
                                  layout=layout or Layout()))
    assert make_plan(spec, STATE).empty  # the guide's caps are the compiled ones
    return {k: (s.user, s.pools) for k, s in spec.services.items()}


WANTED = {"glance": ("glance", ("images",)), "cinder-volume": ("cinder", ("volumes",)),
          "cinder-backup": ("cinder-backup", ("backups",)), "nova": ("cinder", ("vms",))}


def test_nova_on_vms_from_nova_conf_cinder_conf_or_the_pool_name(tmp_path):
    (tmp_path / "nova.conf").write_text("[libvirt]\nimages_type = rbd\nimages_rbd_pool = vms\n"
                                        "rbd_user = cinder\n")
    (tmp_path / "cinder.conf").write_text(
        "[ceph]\nvolume_driver = cinder.volume.drivers.rbd.RBDDriver\nrbd_pool = volumes\n"
        "rbd_user = cinder\n")
    both = read_layout(str(tmp_path / "cinder.conf"), str(tmp_path / "nova.conf"))
    assert both == Layout("cinder", "vms", {"cinder": ("volumes",)})
    assert _services(both) == WANTED
    assert _services(both, fix=False) == WANTED
    assert _services(read_layout(str(tmp_path / "cinder.conf"), None)) == WANTED
    assert _services(read_layout(None, str(tmp_path / "nova.conf"))) == WANTED
    assert _services() == WANTED  # "vms": a pool named for Nova's disks


def test_a_cinder_user_on_one_pool_stays_cinder():
    state = ClusterState("f", {"volumes": pool("volumes")}, {"client.cinder": ClientState(
        "client.cinder", {"mon": "profile rbd", "osd": "profile rbd pool=volumes"},
        Secret("k"))}, osds_in=1)
    spec = parse_spec(import_spec(state, ClusterSettings("/c", "/k"), None, True))
    assert set(spec.services) == {"cinder-volume"}
