"""libvirt secrets: one per cephx user a compute host needs (Nova's own, and Cinder's, since
Nova attaches Cinder volumes with Cinder's credentials). The key never goes on a command
line or into a script: it sits in a 0600 file, read by libvirt's binding (host/secrets.py)
or by virsh --file.
"""

from __future__ import annotations

from html import escape  # xml.sax.saxutils would pull in urllib and http: slow start-up


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
