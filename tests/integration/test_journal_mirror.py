"""Cinder's replication, journal-based, between two real sandboxes with rbd-mirror: the
volume made and mirrored exactly as Cinder's RBD driver does, replayed on the secondary
(its lag measured), failed over orderly and forced, written there, failed back."""

from __future__ import annotations

import time

import pytest

from cephstack.ceph import mirror
from cephstack.day2.mirrorstatus import MirroredImage, read_mirrored, summary_line
from cephstack.verify.drill import DrillSite
from cephstack.verify.journaldrill import journal_drill
from tests.integration.test_mirror import KW, POOL, MiB, _cinder, sites  # noqa: F401 - fixture

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mirrored(sites):  # noqa: F811 - test_mirror's fixture
    (a, ca), (b, cb) = sites
    mirror.ensure_mirroring(ca, cb, [POOL], **KW)
    return sites


def _drill(sites, outage=None):  # noqa: F811 - test_mirror's fixture name
    # rbd-mirror restarts its replayer after a switch of direction: 60-85 s on an idle
    # 2-core machine, more while other suites run; the bound only matters on failure.
    (a, ca), (b, cb) = sites
    lines: list[str] = []
    steps, lags = journal_drill(DrillSite("site-a", ca, _cinder(a)),
                                DrillSite("site-b", cb, _cinder(b)), POOL, timeout=300,
                                outage=outage, progress=lines.append)
    print("\n".join(lines))
    assert not [s for s in steps if not s.ok], "\n".join(lines)
    return steps, lags


def test_journal_drill_orderly(mirrored):
    steps, lags = _drill(mirrored)
    names = [s.name for s in steps]
    assert names[:5] == ["create and write the volume on site-a",
                         "enable replication as Cinder does", "replayed on site-b",
                         "write on site-a", "replay lag to site-b"]
    assert "journal mode" in steps[1].detail
    assert "promote on site-b" in names and "promote on site-a" in names
    assert names[-2:] == ["replayed on site-b again", "clean up"]
    assert len(lags) == 4 and all(0 <= lag < 300 for lag in lags)
    assert "replay lag" in steps[4].detail


def test_journal_drill_forced_with_the_primary_down(mirrored):
    (a, ca), (b, cb) = mirrored
    steps, _ = _drill(mirrored, a.outage())
    names = [s.name for s in steps]
    assert "forced promote on site-b" in names and "resync on site-a" in names
    assert "site-a serves the volume read-write again" in names
    assert "forced promote" not in steps[-1].detail
    assert a.box.status().up


def test_status_shows_a_cinder_volume_as_journal_mirrored(mirrored):
    (a, ca), (b, cb) = mirrored
    name = "volume-status-journal"
    ca.rbd("create", POOL, name, 4 * MiB, old_format=False,
           features=ca.features("layering", "exclusive_lock", "journaling"))
    try:
        with ca.image(POOL, name) as img:
            img.mirror_image_enable()  # as Cinder: no mode, journal
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            there = {i.name: i for i in read_mirrored(cb, POOL)}
            if name in there and there[name].behind == 0:
                break
            time.sleep(1)
        assert there[name] == MirroredImage(name, "journal", False, "replaying", 0)
        here = {i.name: i for i in read_mirrored(ca, POOL)}
        assert here[name] == MirroredImage(name, "journal", True, "stopped", 0)  # peer's lag
        assert "1 Cinder replicated volumes (journal): 0 primary here, 1 replayed here " \
               "(replaying 1), at most 0 journal entries behind" in summary_line(
                   "site-b", POOL, [there[name]])
    finally:
        ca.rbd("remove", POOL, name)
