"""Which cephx key types this host's Ceph clients can use, per service of a bundle
(`cephstack host check BUNDLE`, and `host install`'s report): the migration to aes256k keys
(CVE-2025-30156) goes host by host, and an OpenStack service whose librados cannot read its
key cannot reach the cluster at all.

Two readings: the Ceph version (`ceph --version`, else the librados2 package) and a probe
that asks the host's own python3-rados (the one the services use) to load a keyring holding
a throwaway aes256k key against an address nobody listens on: a librados that cannot read
the type fails at once (EIO, "Malformed input"; measured on Pacific 16.2.15 and Reef 18.2.7),
one that can goes on to look for a monitor and times out (Tentacle 20.2.4). No key of the
bundle is used and nothing is contacted.
"""

from __future__ import annotations

import subprocess
from dataclasses import asdict, dataclass

from cephstack.ceph.cephx import AES, AES256K, key_type_name
from cephstack.ceph.libversion import (
    AES256K_ADVICE,
    KEY_TYPE_PROBE,
    LibVersion,
    local_version,
)
from cephstack.host.checks import PYTHON
from cephstack.host.manifest import Manifest


@dataclass(frozen=True)
class KeySupport:
    version: str | None  # "16.2.15"
    release: str | None  # "pacific"
    version_source: str | None
    aes256k: bool | None  # what the probe found (None: it could not tell)
    detail: str

    def can_use(self, key_type: str) -> bool | None:
        if key_type == AES.name:
            return True
        if key_type == AES256K.name:
            return self.aes256k
        return None

    def summary(self) -> str:
        where = (f"Ceph {self.version} {str(self.release).capitalize()} (from "
                 f"{self.version_source})" if self.version else "Ceph version unknown")
        can = {True: "yes", False: "NO", None: "unknown"}[self.aes256k]
        return f"this host's Ceph client: {where}; can use aes256k keys: {can} ({self.detail})"


def probe_aes256k(python: str = PYTHON, timeout: float = 20) -> tuple[bool | None, str]:
    try:
        proc = subprocess.run([python, "-c", KEY_TYPE_PROBE], capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        return None, f"the probe did not run: {e}"
    out = (proc.stdout.strip() or proc.stderr.strip()).splitlines()
    answer = out[-1] if out else f"exit {proc.returncode}"
    if answer == "readable":
        return True, f"{python}'s librados reads an aes256k keyring"
    if answer == "unreadable":
        return False, f"{python}'s librados refuses an aes256k keyring (Malformed input)"
    return None, answer


def host_key_support(python: str = PYTHON, probe: bool = True) -> KeySupport:
    """`probe` False (host install): the version decides, the probe runs only when the
    version is unknown (it takes about a second)."""
    found: LibVersion | None = local_version()
    if probe or found is None:
        aes256k, detail = probe_aes256k(python)
    else:
        aes256k, detail = None, "not probed"
    if aes256k is None and found is not None:  # no probe answer: the version says
        aes256k, detail = found.aes256k, f"by its version ({detail})"
    return KeySupport(found.version if found else None, found.release if found else None,
                      found.source if found else None, aes256k, detail)


def service_keys(manifest: Manifest, support: KeySupport) -> list[dict]:
    """Per service check of the bundle: its user, keyring, key type, and whether this host
    can use that key and an aes256k one."""
    texts = {f.host_path: f.text for f in manifest.files if f.holds_key}
    out = []
    for check in manifest.checks:
        kind = None
        for line in texts.get(check["keyring"], "").splitlines():
            if line.strip().startswith("key") and "=" in line:
                kind = key_type_name(line.split("=", 1)[1].strip())
        out.append({"service": check["service"], "entity": check["entity"],
                    "keyring": check["keyring"], "key_type": kind,
                    "usable": support.can_use(kind) if kind else None,
                    "aes256k_usable": support.aes256k})
    return out


def as_dict(support: KeySupport) -> dict:
    return asdict(support)


def service_lines(services: list[dict]) -> list[str]:
    lines = []
    for s in services:
        head = f"  {s['service']} ({s['entity']}, {s['keyring']}): key {s['key_type']}"
        if s["usable"] is False:
            lines.append(f"{head}, NOT usable here: {AES256K_ADVICE} here first")
        elif s["key_type"] == AES256K.name:
            lines.append(f"{head}, usable here")
        else:
            after = {True: "yes", False: f"no ({AES256K_ADVICE} here first)",
                     None: "unknown"}[s["aes256k_usable"]]
            lines.append(f"{head}, {'usable here' if s['usable'] else 'unknown here'}; "
                         f"after a rotation to aes256k: {after}")
    return lines
