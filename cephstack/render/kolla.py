"""/etc/kolla/config as kolla-ansible (2024.1 and 2025.1) reads it for external Ceph, and the
globals.yml fragment naming every user, keyring, pool and Cinder backend.

kolla copies the named `<cluster>.conf` and `<cluster>.client.<user>.keyring` files of each
service's directory into the container's /etc/ceph (owned by the service, 0600), so
ceph.conf has no keyring = line and no leading whitespace (kolla's merge reads indented
lines as continuations). Facts and their sources: tests/data/kolla_facts.py.
"""

from __future__ import annotations

from functools import partial

from cephstack.keyfiles import keyring_text
from cephstack.render import openstack
from cephstack.render.cephconf import ceph_conf
from cephstack.render.ini import Option, Section, ini_text
from cephstack.render.model import CLUSTER, ClusterFacts, RenderedFile, key_file, keyring_name
from cephstack.spec.load import Spec

# kolla directory -> the services whose keyrings it holds (present when the first is)
LAYOUT = (
    ("config/glance", ("glance",)),
    ("config/cinder/cinder-volume", ("cinder-volume",)),
    ("config/cinder/cinder-backup", ("cinder-backup", "cinder-volume")),
    # kolla fills the libvirt secret of Cinder's user from Cinder's keyring here.
    ("config/nova", ("nova", "cinder-volume")),
)
# <cluster>.conf per directory: Cinder's services share config/cinder/<cluster>.conf.
CONF_DIRS = {"config/glance": "glance", "config/cinder": "cinder-volume",
             "config/nova": "nova"}
KOLLA_VARS = {  # service -> (enable flag, variable prefix)
    "glance": ("glance_backend_ceph", "ceph_glance"),
    "cinder-volume": ("cinder_backend_ceph", "ceph_cinder"),
    "cinder-backup": (None, "ceph_cinder_backup"),
    "nova": ("nova_backend_ceph", "ceph_nova"),
}
MULTI_POOL_NOTE = ("kolla-ansible 2024.1 gives every Cinder backend ceph_cinder_pool_name: "
                   "only 2025.1 and later use each backend's own pool")


def _globals(spec: Spec) -> str:
    lines = ["# globals.yml fragment for external Ceph, written by cephstack render.",
             f'ceph_cluster: "{CLUSTER}"  # 2025.1+']
    for kind, (flag, prefix) in KOLLA_VARS.items():
        s = spec.services.get(kind)
        if s is None:
            continue
        if flag:
            lines.append(f'{flag}: "yes"')
        lines += [f'{prefix}_user: "{s.user}"', f'{prefix}_pool_name: "{s.pools[0]}"',
                  # 2024.1 reads these (and gives Nova Cinder's keyring by default);
                  # 2025.1 derives the same names from the users.
                  f'{prefix}_keyring: "client.{s.user}.keyring"']
    if "cinder-volume" in spec.services:
        user = spec.services["cinder-volume"].user
        backends = openstack.backends(spec)
        # The backup backend must name one of cinder_ceph_backends (kolla fails otherwise).
        lines += [f'cinder_backend_ceph_name: "{backends[0][2]}"',
                  f'cinder_backup_backend_ceph_name: "{backends[0][2]}"']
        if len(backends) > 1:
            lines.append(f"# {MULTI_POOL_NOTE}")
        lines.append("cinder_ceph_backends:")  # every Cinder pool, not only the first
        for pool, _, name in backends:
            lines += [f'  - name: "{name}"', f'    backend_name: "{name}"',
                      f'    cluster: "{CLUSTER}"', f'    pool: "{pool}"', f'    user: "{user}"',
                      "    enabled: true"]
    return "\n".join(lines) + "\n"


def kolla(spec: Spec, facts: ClusterFacts) -> list[RenderedFile]:
    files: list[RenderedFile] = []
    for directory, kind in CONF_DIRS.items():
        if kind in spec.services:
            files.append(RenderedFile(f"{directory}/{CLUSTER}.conf",
                                      ceph_conf(facts, qemu=kind == "nova")))
    for directory, kinds in LAYOUT:
        if kinds[0] not in spec.services:
            continue
        entities = dict.fromkeys(f"client.{spec.services[k].user}" for k in kinds
                                 if k in spec.services)
        files += [key_file(facts, entity, f"{directory}/{keyring_name(entity)}",
                           partial(keyring_text, entity)) for entity in entities]
    if "glance" in spec.services:
        # kolla never sets it: without it, no copy-on-write clones from Glance images.
        files.append(RenderedFile("config/glance.conf", ini_text([Section(
            "DEFAULT", (Option("show_image_direct_url", "True",
                               "Cinder and Nova clone Glance images copy-on-write only when "
                               "Glance shows locations; keep this endpoint internal."),))],
            "glance.conf override for kolla-ansible, written by cephstack render.")))
    files.append(RenderedFile("globals.yml", _globals(spec)))
    return files
