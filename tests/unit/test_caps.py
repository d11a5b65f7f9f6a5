import random
import re

import pytest

from cephstack.spec.caps import Caps, CapsSyntaxError, Grant, _scan, parse_cap, parse_grant, quoted


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


def test_plain_cap_strings_split_as_words_and_commas():
    # Without quotes: grants split at commas, words at ASCII whitespace (Ceph's
    # ascii::space; a no-break space is part of a word), backslashes are plain characters.
    rng = random.Random(7)
    alphabet = " \t\n\r\x0b\xa0\u2003\\ab=,*"
    for _ in range(20000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 10)))
        words = [w for w in re.split(r"[ \t\n\r\x0b\x0c,]+", text) if w]
        assert [w for g in _scan(text) for w in g] == words, repr(text)


def test_quoted_grants():
    assert parse_grant('allow command "osd pool ls"').other == ("command", "osd pool ls")
    assert parse_grant("allow r pool='a b'").pool == "a b"
    assert parse_cap("profile rbd pool=vm") is parse_cap("profile rbd pool=vm")  # cached


@pytest.mark.parametrize("text, pool", [
    ("profile rbd pool=\"q'uote\"", "q'uote"),  # as `ceph auth caps` takes it
    ("profile rbd pool='say \"hi\"'", 'say "hi"'),
    ("allow rwx pool=\"a<b&c]]>\\e\"", "a<b&c]]>\\e"),  # no escapes in Ceph's grammar
    ("allow r pool=\"a,b\"", "a,b"),
    ("allow r pool=\"esc\x1b[31m\"", "esc\x1b[31m"),
    ("allow r pool=\"ünï池\"", "ünï池"),
    ("allow pool images rwx", "images"),  # Ceph's older word order
])
def test_pool_names_with_the_quoting_ceph_allows(text, pool):
    grants = parse_cap(text)
    assert [g.pool for g in grants] == [pool]
    rendered = ", ".join(g.render() for g in grants)
    assert parse_cap(rendered) == grants  # what render writes parses back the same


def test_a_value_is_quoted_only_when_it_must_be():
    assert quoted("images") == "images"
    assert quoted("q'uote") == '"q\'uote"'
    assert quoted('say "hi"') == "'say \"hi\"'"
    with pytest.raises(CapsSyntaxError, match="both quote characters"):
        quoted("q'u\"ote")
    assert Grant("allow", ("rwx",), "q'uote").covers(parse_grant("allow r pool=\"q'uote\""))


@pytest.mark.parametrize("bad", ["allow r pool=q'uote", "allow r pool=\"unclosed"])
def test_a_cluster_grant_that_does_not_parse_is_kept_apart_not_raised(bad):
    with pytest.raises(CapsSyntaxError):
        parse_cap(bad)  # the spec's caps: refused with a clear error
    caps = Caps.parse({"osd": f"profile rbd pool=vms, {bad}"})  # a cluster's: kept
    grants = caps.by_type()["osd"]
    assert {g.unparsed for g in grants} == {True, False}
    odd = next(g for g in grants if g.unparsed)
    assert odd.render() == bad
    assert not odd.covers(parse_grant("allow r pool=x"))
    assert not parse_grant("allow *").covers(odd)
