"""Lay rendered files out per host role (plain) or as kolla-ansible expects (kolla).

plain:   controller/ (Glance, Cinder volume), backup/ (Cinder backup AND Cinder's keyring:
         the backup driver reads source volumes as Cinder's user), compute/ (Nova, and
         libvirt secrets for Nova's and Cinder's users). Each holds exactly the keyrings
         its role needs.
kolla:   config/glance/, config/cinder/cinder-volume/, config/cinder/cinder-backup/,
         config/nova/ with ceph.conf and keyrings, and a globals.yml fragment.
"""

from __future__ import annotations

from cephstack.errors import CephstackError
from cephstack.keyfiles import keyring_text
from cephstack.render import libvirt, openstack
from cephstack.render.cephconf import ceph_conf
from cephstack.render.ini import ini_text, merged_sections
from cephstack.render.model import ClusterFacts, RenderedFile, secret_uuid
from cephstack.spec import Spec

FORMATS = ("plain", "kolla")
HEADER = "{what}, written by cephstack render: merge into the service's file\n" \
         "(cephstack render --merge-into PATH does it in place)."


def _entity(spec: Spec, service: str) -> str | None:
    s = spec.services.get(service)
    return f"client.{s.user}" if s else None


def _keyring(facts: ClusterFacts, entity: str, directory: str) -> RenderedFile:
    if entity not in facts.keys:
        raise CephstackError(f"{entity} does not exist in the cluster",
                             hint="run cephstack apply first")
    return RenderedFile(f"{directory}/ceph.{entity}.keyring",
                        keyring_text(entity, facts.keys[entity]), secret=True)


def _role(spec: Spec, facts: ClusterFacts, directory: str, entities: list[str]) -> list:
    """ceph.conf plus the keyrings of `entities`, in `directory`."""
    entities = list(dict.fromkeys(entities))  # one user may serve two services
    paths = {e: spec.keyrings.path_for(e) for e in entities}
    return [RenderedFile(f"{directory}/ceph.conf", ceph_conf(facts, paths))] + [
        _keyring(facts, e, directory) for e in entities]


def role_entities(spec: Spec) -> dict[str, list[str]]:
    """Host role -> the cephx users whose keyrings it holds."""
    glance, volume = _entity(spec, "glance"), _entity(spec, "cinder-volume")
    backup, nova = _entity(spec, "cinder-backup"), _entity(spec, "nova")
    roles: dict[str, list[str]] = {}
    if glance or volume:
        roles["controller"] = [e for e in (glance, volume) if e]
    if backup:
        roles["backup"] = [e for e in (backup, volume) if e]
    if nova:
        roles["compute"] = [nova]  # Cinder's key reaches compute as a libvirt secret only
    return roles


def _plain(spec: Spec, facts: ClusterFacts) -> list[RenderedFile]:
    roles = role_entities(spec)
    files: list[RenderedFile] = []
    if "controller" in roles:
        files += _role(spec, facts, "controller", roles["controller"])
        if "glance" in spec.services:
            files.append(RenderedFile("controller/glance-api.conf", ini_text(
                openstack.glance(spec), HEADER.format(what="Glance (glance-api.conf)"))))
        if "cinder-volume" in spec.services:
            files.append(RenderedFile("controller/cinder.conf", ini_text(
                openstack.cinder_volume(spec, facts.fsid),
                HEADER.format(what="Cinder volume (cinder.conf)"))))
    if "backup" in roles:
        files += _role(spec, facts, "backup", roles["backup"])
        files.append(RenderedFile("backup/cinder.conf", ini_text(
            openstack.cinder_backup(spec), HEADER.format(what="Cinder backup (cinder.conf)"))))
    if "compute" in roles:
        files += _role(spec, facts, "compute", roles["compute"])
        files.append(RenderedFile("compute/nova.conf", ini_text(
            openstack.nova(spec, facts.fsid), HEADER.format(what="Nova (nova.conf)"))))
        files += _secrets(spec, facts)
    return files


def libvirt_entities(spec: Spec) -> list[str]:
    """The users a compute host needs libvirt secrets for: Nova's and Cinder's."""
    return list(dict.fromkeys(e for e in (_entity(spec, "nova"), _entity(spec, "cinder-volume"))
                              if e))


def _secrets(spec: Spec, facts: ClusterFacts) -> list[RenderedFile]:
    files, uuids = [], []
    for entity in libvirt_entities(spec):
        uuid = secret_uuid(facts.fsid, entity)
        uuids.append(uuid)
        if entity not in facts.keys:
            raise CephstackError(f"{entity} does not exist in the cluster",
                                 hint="run cephstack apply first")
        files += [RenderedFile(f"compute/secrets/{uuid}.xml",
                               libvirt.secret_xml(uuid, entity, facts.fsid)),
                  RenderedFile(f"compute/secrets/{uuid}.key",
                               facts.keys[entity].reveal(), secret=True)]
    files.append(RenderedFile("compute/secrets/install.sh", libvirt.install_script(uuids),
                              executable=True))
    return files


def _kolla(spec: Spec, facts: ClusterFacts) -> list[RenderedFile]:
    glance, volume = _entity(spec, "glance"), _entity(spec, "cinder-volume")
    backup, nova = _entity(spec, "cinder-backup"), _entity(spec, "nova")
    files: list[RenderedFile] = []
    layout = (("config/glance", [glance]), ("config/cinder/cinder-volume", [volume]),
              ("config/cinder/cinder-backup", [backup, volume]),
              ("config/nova", [nova, volume]))  # kolla makes Cinder's libvirt secret from it
    for directory, entities in layout:
        if entities[0]:
            files += _role(spec, facts, directory, [e for e in entities if e])
    globals_lines = ["# globals.yml fragment for external Ceph, written by cephstack render"]
    for flag, service, prefix in (("glance_backend_ceph", "glance", "ceph_glance"),
                                  ("cinder_backend_ceph", "cinder-volume", "ceph_cinder"),
                                  (None, "cinder-backup", "ceph_cinder_backup"),
                                  ("nova_backend_ceph", "nova", "ceph_nova")):
        s = spec.services.get(service)
        if s is None:
            continue
        if flag:
            globals_lines.append(f'{flag}: "yes"')
        globals_lines += [f'{prefix}_user: "{s.user}"', f'{prefix}_pool_name: "{s.pools[0]}"']
    files.append(RenderedFile("globals.yml", "\n".join(globals_lines) + "\n"))
    return files


def render(spec: Spec, facts: ClusterFacts, fmt: str = "plain") -> list[RenderedFile]:
    """Every file of the layout `fmt`, in a stable order."""
    if fmt not in FORMATS:
        raise CephstackError(f"unknown format {fmt!r}", hint=f"one of: {', '.join(FORMATS)}")
    return _plain(spec, facts) if fmt == "plain" else _kolla(spec, facts)


def service_sections(spec: Spec, fsid: str, service: str) -> list:
    """The sections cephstack owns in a service's own file, for --merge-into."""
    if service == "glance":
        return openstack.glance(spec)
    if service == "nova":
        return openstack.nova(spec, fsid)
    if service == "cinder":  # one cinder.conf may serve volumes and backups
        groups = []
        if "cinder-volume" in spec.services:
            groups.append(openstack.cinder_volume(spec, fsid))
        if "cinder-backup" in spec.services:
            groups.append(openstack.cinder_backup(spec))
        return merged_sections(*groups)
    raise CephstackError(f"unknown service file {service!r}", hint="glance, cinder or nova")
