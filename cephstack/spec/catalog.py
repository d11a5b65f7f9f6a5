"""What each OpenStack service needs from Ceph, as data, and the caps compiled from it.

Facts (../shared/design/OPENSTACK-RBD.md): every RBD client needs mon 'profile rbd' so it
can blocklist a dead exclusive-lock holder (without it `nova evacuate` hangs). Cinder and
Nova read the Glance pool to clone images copy-on-write; without that read they silently
fall back to full copies. Nova's direct snapshots write into the Glance pool.
"""

from __future__ import annotations

from dataclasses import dataclass

from cephstack.spec.caps import Caps
from cephstack.spec.load import Spec

# Which services clone Glance images copy-on-write and so need read on the images pool.
CLONES_FROM_IMAGES = ("cinder-volume", "nova")
# The caps of an rbd-mirror daemon's own user (client.rbd-mirror.<site>).
MIRROR_USER_CAPS = {"mon": "profile rbd-mirror", "osd": "profile rbd"}


@dataclass(frozen=True)
class DesiredClient:
    entity: str  # client.<name>
    caps: Caps
    services: tuple[str, ...]  # the services whose needs compiled these caps; () for clients
    text: dict[str, str]  # the cap strings to send: canonical, or as the spec wrote them


def _service_grants(spec: Spec) -> dict[str, tuple[list[str], list[str], list[str]]]:
    """user -> (osd grants, mgr grants, services) compiled from the services."""
    images = spec.services["glance"].pools[0] if "glance" in spec.services else None
    out: dict[str, tuple[list[str], list[str], list[str]]] = {}
    for kind, service in sorted(spec.services.items()):
        osd, mgr, kinds = out.setdefault(service.user, ([], [], []))
        kinds.append(kind)
        for pool in service.pools:
            osd.append(f"profile rbd pool={pool}")
            mgr.append(f"profile rbd pool={pool}")
        if images and kind in CLONES_FROM_IMAGES and images not in service.pools:
            # Direct snapshots clone a guest disk INTO the images pool: write access.
            writes = kind == "nova" and service.direct_snapshots
            osd.append(f"profile {'rbd' if writes else 'rbd-read-only'} pool={images}")
    return out


def desired_clients(spec: Spec) -> dict[str, DesiredClient]:
    """Every cephx user the spec manages, with the caps it must have."""
    out = {}
    for user, (osd, mgr, kinds) in _service_grants(spec).items():
        caps = Caps.parse({"mon": "profile rbd", "osd": ", ".join(osd), "mgr": ", ".join(mgr)})
        out[f"client.{user}"] = DesiredClient(f"client.{user}", caps, tuple(kinds),
                                              caps.rendered())
    for name, client in spec.clients.items():
        out[f"client.{name}"] = DesiredClient(f"client.{name}", Caps.parse(client.caps), (),
                                              dict(client.caps))
    return dict(sorted(out.items()))
