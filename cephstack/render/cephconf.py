"""The client ceph.conf: how to reach the monitors, and the [client] settings the Ceph
documentation recommends for OpenStack clients. No `keyring =` line: librados and os-brick
then find each key at its default path, /etc/ceph/<cluster>.<entity>.keyring."""

from __future__ import annotations

from cephstack.render.ini import Option, Section, ini_text
from cephstack.render.model import ClusterFacts

ALL_CLIENTS = (
    Option("rbd concurrent management ops", "20",
           "More parallel image operations (clone, flatten, delete) than the default 10."),
)
# Read by QEMU's librbd only: compute hosts. Their directories must exist and be writable
# by the hypervisor's user (cephstack host install creates them).
QEMU_CLIENTS = (
    Option("rbd cache", "true", "Cache writes in librbd: much faster guest I/O."),
    Option("rbd cache writethrough until flush", "true",
           "Safe with guests that never flush: write through until the first flush."),
    Option("admin socket", "/var/run/ceph/guests/$cluster-$type.$id.$pid.$cctid.asok",
           "One admin socket per QEMU process, for diagnostics (directory writable by QEMU)."),
    Option("log file", "/var/log/qemu/qemu-guest-$pid.log",
           "One log per guest (directory writable by QEMU)."),
)
QEMU_DIRECTORIES = ("/var/run/ceph/guests", "/var/log/qemu")


def ms_options(mode: str | None) -> tuple[Option, ...]:
    """The msgr2 mode every connection of this host's clients asks for (spec cluster
    ms_mode): to the monitors and to the OSDs. Otherwise Ceph's defaults (crc preferred,
    secure accepted)."""
    if mode != "secure":
        return ()
    return (Option("ms_client_mode", mode, "msgr2 mode of the connections to the OSDs: "
                   "secure encrypts every volume's data on the wire."),
            Option("ms_mon_client_mode", mode, "msgr2 mode of the connections to the "
                   "monitors."))


def v2_only(mon_host: str) -> str:
    """mon_host without the msgr1 addresses: msgr1 has no secure mode."""
    vectors = []
    for vector in mon_host.split():
        if vector.startswith("["):
            kept = [a for a in vector.strip("[]").split(",") if a.startswith("v2:")]
            vectors.append(f"[{','.join(kept)}]" if kept else vector)
        else:
            vectors.append(vector)
    return " ".join(vectors)


def ceph_conf(facts: ClusterFacts, qemu: bool) -> str:
    """`qemu`: for a compute host, whose guests' librbd reads the QEMU settings."""
    client = ALL_CLIENTS + ms_options(facts.ms_mode) + (QEMU_CLIENTS if qemu else ())
    mon_host = v2_only(facts.mon_host) if facts.ms_mode == "secure" else facts.mon_host
    sections = [Section("global", (Option("fsid", facts.fsid),
                                   Option("mon_host", mon_host))),
                Section("client", client)]
    return ini_text(sections, "Ceph client configuration, written by cephstack render.")
