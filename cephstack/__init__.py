"""cephstack: Ceph RBD for OpenStack, declared once, planned, applied, wired and proven."""

__version__ = "0.1.0"
