import random
import shlex

import pytest

from cephstack.spec.caps import _NOT_PLAIN, Caps, CapsSyntaxError, parse_cap, parse_grant


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


def test_the_fast_split_is_shlexs_wherever_it_is_taken():
    # Cap strings without quotes, escapes or unusual spaces are split with str.split: the
    # same words as shlex.split, which only the others need.
    rng = random.Random(7)
    alphabet = " \t\n\r\x0b\xa0\u2003\"'\\ab=,*"
    taken = 0
    for _ in range(20000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 10)))
        if not _NOT_PLAIN.search(text):
            taken += 1
            assert text.split() == shlex.split(text), repr(text)
    assert taken > 1000


def test_quoted_grants_still_go_through_shlex():
    assert parse_grant('allow command "osd pool ls"').other == ("command", "osd pool ls")
    assert parse_grant("allow r pool='a b'").pool == "a b"
    assert parse_cap("profile rbd pool=vm") is parse_cap("profile rbd pool=vm")  # cached
