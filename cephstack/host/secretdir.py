"""`cephstack secrets install`: the libvirt secrets of a rendered compute bundle's
secrets/ directory (<uuid>.xml and <uuid>.key, as render writes them), defined through
libvirt's binding (host/secrets.py) without a bundle's manifest."""

from __future__ import annotations

import base64
from pathlib import Path

from cephstack.errors import CephstackError
from cephstack.host.secrets import define, libvirt_problem


def install(directory: str, uri: str) -> list[dict]:
    """Define every <uuid>.xml secret of `directory` in libvirt and set its value from
    <uuid>.key (the key never goes on a command line). Idempotent: an unchanged secret is
    left as it is. Each: {"uuid", "usage", "changed"}."""
    if problem := libvirt_problem():
        raise CephstackError(problem)
    files = sorted(Path(directory).glob("*.xml"))
    if not files:
        raise CephstackError(f"no secret XML files in {directory}",
                             hint="cephstack render --out DIR writes them to DIR/compute/secrets")
    return define([{"uuid": f.stem, "xml": f.read_text(),
                    "value": base64.b64decode(f.with_suffix(".key").read_text().strip())}
                   for f in files], uri)
