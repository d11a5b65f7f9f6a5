"""libvirt secrets: one per cephx user a compute host needs (Nova's own, and Cinder's, since
Nova attaches Cinder volumes with Cinder's credentials). The key never goes on a command
line or into a script: it sits in a 0600 file, read by libvirt's binding or by virsh --file.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from html import escape  # xml.sax.saxutils would pull in urllib and http: slow start-up
from pathlib import Path

from cephstack.errors import CephstackError


def usage_name(entity: str, fsid: str) -> str:
    return f"{entity} secret (ceph cluster {fsid})"


def secret_xml(uuid: str, entity: str, fsid: str) -> str:
    return (f"<secret ephemeral='no' private='no'>\n  <uuid>{uuid}</uuid>\n"
            f"  <usage type='ceph'>\n    <name>{escape(usage_name(entity, fsid))}</name>\n"
            "  </usage>\n</secret>\n")


def install_script(uuids: list[str]) -> str:
    lines = ["#!/bin/sh", "# Install cephstack's libvirt secrets on this compute host.",
             "# The keys stay in the .key files (mode 0600); they are passed by file.",
             "set -eu", 'cd "$(dirname "$0")"']
    for uuid in uuids:
        lines += [f"virsh secret-define --file {uuid}.xml",
                  f"virsh secret-set-value --secret {uuid} --file {uuid}.key"]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class InstalledSecret:
    uuid: str
    usage: str
    changed: bool


def install(directory: str, uri: str) -> list[InstalledSecret]:
    """Define every <uuid>.xml secret of `directory` in libvirt and set its value from
    <uuid>.key. Idempotent: an unchanged secret is left as it is."""
    try:
        import libvirt  # only this command needs libvirt's binding
    except ImportError:
        raise CephstackError("libvirt's Python binding is not installed",
                             hint="apt-get install python3-libvirt") from None
    files = sorted(Path(directory).glob("*.xml"))
    if not files:
        raise CephstackError(f"no secret XML files in {directory}",
                             hint="cephstack render --out DIR writes them to DIR/compute/secrets")
    try:
        conn = libvirt.open(uri)
    except libvirt.libvirtError as e:
        raise CephstackError(f"cannot connect to libvirt at {uri}: {e}") from None
    done = []
    try:
        for xml_file in files:
            uuid = xml_file.stem
            value = base64.b64decode(xml_file.with_suffix(".key").read_text().strip())
            try:
                secret = conn.secretLookupByUUIDString(uuid)
                current = secret.value() if secret else None
            except libvirt.libvirtError:
                secret, current = None, None
            if secret is None:
                secret = conn.secretDefineXML(xml_file.read_text())
            if current != value:
                secret.setValue(value)
            done.append(InstalledSecret(uuid, secret.usageID(), current != value))
    except libvirt.libvirtError as e:
        raise CephstackError(f"libvirt refused a secret: {e}") from None
    finally:
        conn.close()
    return done
