"""cephstack: Ceph RBD for OpenStack, declared once, planned, applied, wired and proven."""

__version__ = "0.1.0"
FORMAT_VERSION = "1"  # of every JSON document cephstack writes (docs/reference.md)
