"""libvirt secrets of a compute bundle, defined from what the manifest check read (the XML
cephstack writes, the key's value): the bundle's files are not read a second time."""

from __future__ import annotations

from cephstack.errors import CephstackError


def libvirt_problem() -> str | None:
    """Why the secrets cannot be defined here (asked before the first change), or None."""
    try:
        import libvirt  # noqa: F401 - only this step needs libvirt's binding
    except ImportError:
        return "libvirt's Python binding is not installed (apt-get install python3-libvirt)"
    return None


def define(secrets: list[dict], uri: str) -> list[dict]:
    """Define each secret and set its value; an unchanged one is left as it is."""
    import libvirt

    try:
        conn = libvirt.open(uri)
    except libvirt.libvirtError as e:
        raise CephstackError(f"cannot connect to libvirt at {uri}: {e}") from None
    done = []
    try:
        for s in secrets:
            try:
                secret = conn.secretLookupByUUIDString(s["uuid"])
                current = secret.value() if secret else None
            except libvirt.libvirtError:
                secret, current = None, None
            if secret is None:
                secret = conn.secretDefineXML(s["xml"])
            if current != s["value"]:
                secret.setValue(s["value"])
            done.append({"uuid": s["uuid"], "usage": secret.usageID(),
                         "changed": current != s["value"]})
    except libvirt.libvirtError as e:
        raise CephstackError(f"libvirt refused a secret: {e}") from None
    finally:
        conn.close()
    return done
