"""Glance images missing from a zone's store: what Nova would refuse to boot there.

With several clusters each zone has a Glance RBD store of its own (render/openstack.py
glance_stores) and its computes set never_download_image_if_on_rbd: Nova clones an image
only from its zone's store and refuses one that is not there, rather than downloading it
from another site's store and re-uploading it flat. Glance names each image's RBD image
after the image's id, so the stores' image directories (`rbd ls` of each store's pool)
tell which images a zone lacks. The fix is Glance's, per image:
`glance image-import <id> --stores <store> --import-method copy-image`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cephstack.render.model import names_clusters
from cephstack.render.openstack import glance_stores
from cephstack.spec.load import Spec

SHOWN = 20  # image ids named per store in text; JSON has them all


@dataclass(frozen=True)
class StoreGap:
    """Images found in another store of the fleet but not in this one."""

    store: str  # Glance's store name (the cluster's name)
    cluster: str
    pool: str
    missing: tuple[str, ...]  # Glance image ids, sorted
    read: bool = True  # False: this store's pool could not be listed (see the cluster's error)


def stores_of(spec: Spec | None) -> list[tuple[str, str, str]]:
    """(store, cluster, pool) of a spec with several Glance stores; [] otherwise (one store:
    nothing can be missing from another)."""
    if spec is None or "glance" not in spec.services or not names_clusters(spec):
        return []
    stores = glance_stores(spec)
    return stores if len(stores) > 1 else []


def store_gaps(stores: list[tuple[str, str, str]], listed: dict[str, set[str] | None]
               ) -> list[StoreGap]:
    """Each store's gap: the images of the other stores it lacks. `listed`: store -> its
    pool's image names, None when not read (a store not read adds nothing to the others'
    gaps and shows as not read)."""
    every = set().union(*(names for names in listed.values() if names is not None))
    return [StoreGap(store, cluster, pool, tuple(sorted(every - names)))
            if (names := listed.get(store)) is not None
            else StoreGap(store, cluster, pool, (), read=False)
            for store, cluster, pool in stores]


def gap_lines(gaps: list[StoreGap]) -> list[str]:
    """Status text: one line per store lacking images, and the command that copies them."""
    lines = []
    for g in gaps:
        if not g.read:
            lines.append(f"Glance store {g.store}: pool {g.pool} on {g.cluster} not read")
        elif g.missing:
            more = len(g.missing) - SHOWN
            named = ", ".join(g.missing[:SHOWN]) + (f" and {more} more" if more > 0 else "")
            lines.append(f"Glance store {g.store} ({g.cluster}/{g.pool}) lacks "
                         f"{len(g.missing)} image(s) other stores have: Nova in zone "
                         f"{g.cluster} refuses to boot them (never_download_image_if_on_rbd): "
                         f"{named}. Copy each: glance image-import <id> --stores {g.store} "
                         "--import-method copy-image")
    return lines


def gaps_json(gaps: list[StoreGap]) -> list[dict[str, Any]]:
    return [{"store": g.store, "cluster": g.cluster, "pool": g.pool, "read": g.read,
             "missing_images": list(g.missing)} for g in gaps]


def list_store(conn: Any, pool: str) -> set[str]:
    """The image names of a store's pool (one omap read per 1024 names)."""
    return {str(n) for n in conn.rbd("list", pool)}
