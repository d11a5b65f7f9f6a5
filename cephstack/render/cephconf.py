"""The client ceph.conf: how to reach the monitors, and the [client] settings the Ceph
documentation recommends for OpenStack (QEMU/librbd) clients."""

from __future__ import annotations

from cephstack.render.ini import Option, Section, ini_text
from cephstack.render.model import ClusterFacts

CLIENT = Section("client", (
    Option("rbd cache", "true", "Cache writes in librbd: much faster guest I/O."),
    Option("rbd cache writethrough until flush", "true",
           "Safe with guests that never flush: write through until the first flush."),
    Option("admin socket", "/var/run/ceph/guests/$cluster-$type.$id.$pid.$cctid.asok",
           "One admin socket per QEMU process, for diagnostics (directory writable by QEMU)."),
    Option("log file", "/var/log/qemu/qemu-guest-$pid.log",
           "One log per guest (directory writable by QEMU)."),
    Option("rbd concurrent management ops", "20",
           "More parallel image operations (clone, flatten, delete) than the default 10."),
))


def ceph_conf(facts: ClusterFacts, keyrings: dict[str, str]) -> str:
    """`keyrings`: entity -> path of its keyring on the host that uses this file."""
    sections = [Section("global", (Option("fsid", facts.fsid),
                                   Option("mon_host", facts.mon_host))), CLIENT]
    sections += [Section(entity, (Option("keyring", path),)) for entity, path in
                 sorted(keyrings.items())]
    return ini_text(sections, "Ceph client configuration, written by cephstack render.")
