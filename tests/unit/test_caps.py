import pytest

from cephstack.caps import Caps, CapsSyntaxError, parse_cap, parse_grant


@pytest.mark.parametrize("a, b", [
    ("allow rwx pool=images", "allow  rwx  pool = images"),
    ("allow rwx pool=a, allow r pool=b", "allow r pool=b,allow rwx pool=a"),
    ("allow xwr pool=a", "allow rwx pool=a"),
    ("profile rbd pool=vm, profile rbd-read-only pool=images",
     " profile rbd-read-only pool=images ,  profile rbd pool=vm"),
])
def test_caps_compare_without_order_or_whitespace(a, b):
    assert parse_cap(a) == parse_cap(b)


@pytest.mark.parametrize("a, b", [
    ("allow rwx pool=images", "allow rw pool=images"),
    ("profile rbd pool=vm", "profile rbd-read-only pool=vm"),
    ("profile rbd pool=vm", "profile rbd pool=vms"),
])
def test_different_caps_differ(a, b):
    assert parse_cap(a) != parse_cap(b)


def test_render_is_canonical():
    caps = Caps.parse({"osd": "profile rbd pool=vm,profile rbd-read-only  pool=images",
                       "mon": "profile rbd"})
    assert caps.rendered() == {"mon": "profile rbd",
                               "osd": "profile rbd pool=vm, profile rbd-read-only pool=images"}


@pytest.mark.parametrize("new, old, covered", [
    ("profile rbd pool=images", "allow rwx pool=images", True),
    ("profile rbd", "allow r", True),  # mon: profile rbd reads the maps
    ("profile rbd pool=images", "profile rbd-read-only pool=images", True),
    ("profile rbd-read-only pool=images", "profile rbd pool=images", False),
    ("profile rbd pool=images", "allow rwx pool=volume", False),
    ("allow rwx", "allow rwx pool=images", True),  # unrestricted covers restricted
    ("allow rwx pool=images", "allow rwx", False),
    ("allow *", "profile rbd pool=x", True),
    ("allow r pool=a", "allow rw pool=a", False),
    ("allow class-read object_prefix rbd_children", "allow class-read object_prefix rbd_children",
     True),
])
def test_grant_coverage(new, old, covered):
    assert parse_grant(new).covers(parse_grant(old)) is covered


def test_missing_from_lists_access_a_change_removes():
    seed = Caps.parse({"mon": "allow r", "osd": "allow rwx pool=volume, allow rwx pool=backups"})
    fixed = Caps.parse({"mon": "profile rbd", "osd": "profile rbd pool=backups"})
    assert seed.missing_from(fixed) == ["osd 'allow rwx pool=volume'"]
    assert fixed.missing_from(Caps.parse({"mon": "profile rbd", "osd": "profile rbd pool=backups",
                                          "mgr": "profile rbd pool=backups"})) == []


@pytest.mark.parametrize("bad", ["rwx pool=images", "allow", "deny rwx", "allow 'unclosed"])
def test_syntax_errors(bad):
    with pytest.raises(CapsSyntaxError):
        parse_cap(bad)
