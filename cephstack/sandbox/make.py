"""What a sandbox cluster is made of: its conf file and its CRUSH map."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cephstack.errors import (
    SandboxError,
)

_GIB = 1 << 30


def conf_text(d: Path, fsid: str, port: int, osds: int, admin_keyring: Path) -> str:
    # Memstore reserves nothing up front; the cap bounds what tests can fill.
    device_bytes = 4 * _GIB if osds == 1 else _GIB
    return f"""\
# cephstack sandbox: a throwaway single-node cluster on loopback. Not for production.
[global]
fsid = {fsid}
mon host = v2:127.0.0.1:{port}
public addr = 127.0.0.1
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
auth allow insecure global id reclaim = false
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
# Replicas go to OSDs, not hosts: size 3 fits on 3 OSDs of this one host.
osd crush chooseleaf type = 0
run dir = {d}/run
log file = {d}/log/$name.log
[client.admin]
keyring = {admin_keyring}
# Per daemon, not global: clients would fight over one admin socket path.
[mon]
mon data = {d}/$name
keyring = {d}/$name/keyring
pid file = {d}/run/$name.pid
admin socket = {d}/run/$name.asok
[mgr]
mgr data = {d}/$name
keyring = {d}/$name/keyring
pid file = {d}/run/$name.pid
admin socket = {d}/run/$name.asok
[osd]
osd data = {d}/$name
keyring = {d}/$name/keyring
pid file = {d}/run/$name.pid
admin socket = {d}/run/$name.asok
osd objectstore = memstore
memstore device bytes = {device_bytes}
"""


def crush_map(conn, work: Path, run: Callable[..., None]) -> bytes | None:
    """The monitor's first CRUSH map with its rule's sizes cut from 1-10 to 1-3; None
    when its rule has no sizes (Reef and later dropped them: nothing to cut).

    Every pool create runs the monitor's CRUSH smoke test: 51 inputs mapped for each
    size the rule allows. On one node, sizes past the OSD count cannot be placed and
    each missing replica is retried 50 times (crushtool: 130 us an input, against
    under 1 us for size 1), so a create cost the monitor ~10 ms of CPU. A sandbox
    holds 3 replicas at most; a cluster with the hosts for its sizes maps at once."""
    work.mkdir(exist_ok=True)
    (work / "initial.bin").write_bytes(conn.mon("osd getcrushmap", binary_output=True))
    run("crushtool", "-d", str(work / "initial.bin"), "-o", str(work / "initial.txt"))
    text = (work / "initial.txt").read_text()
    if "max_size" not in text:
        return None
    if text.count("\tmax_size 10\n") != 1:
        raise SandboxError("unexpected first CRUSH map: no single rule with max_size 10",
                           hint=f"see {work / 'initial.txt'}")
    (work / "sandbox.txt").write_text(text.replace("\tmax_size 10\n", "\tmax_size 3\n"))
    run("crushtool", "-c", str(work / "sandbox.txt"), "-o", str(work / "sandbox.bin"))
    return (work / "sandbox.bin").read_bytes()

