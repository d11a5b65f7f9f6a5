"""Trash purge schedules and msgr2 requirements as a plan sees them (spec in, actions out),
and Cinder's deferred deletion rendered into its backend. No cluster."""

from __future__ import annotations

import configparser
from dataclasses import replace

import pytest

from cephstack.errors import SpecError
from cephstack.plan.make import make_plan
from cephstack.plan.secure import REQUIRED, SetClusterConfig
from cephstack.plan.trash import DEFAULT_INTERVAL, SetTrashPurge, wanted
from cephstack.render.ini import ini_text
from cephstack.render.openstack import cinder_volume
from cephstack.report.views import plan_text
from cephstack.spec.defaults import DEFAULT_SPEC
from cephstack.spec.load import parse_spec
from tests.unit.test_plan import converged

SPEC = parse_spec(DEFAULT_SPEC)


def _with(text: str, old: str, new: str):
    assert old in text
    return parse_spec(text.replace(old, new))


def _plan(spec, **extras):
    return make_plan(spec, replace(converged(spec), extras=extras))


def test_the_default_is_a_schedule_on_cinders_managed_pools_only():
    assert wanted(SPEC) == {"volume": DEFAULT_INTERVAL}
    adopted = _with(DEFAULT_SPEC, "volume:  {pg_num: 32}", "volume:  {pg_num: 32, init: false}")
    assert wanted(adopted) == {}  # an adopted pool keeps its own settings
    deferred = _with(DEFAULT_SPEC, "{user: cinder-volume, pools: [volume]}",
                     "{user: cinder-volume, pools: [volume], trash: {delay: 0}}")
    assert wanted(deferred) == {}  # Cinder's own purge empties it


def test_plan_sets_changes_and_removes_schedules_and_a_second_plan_is_empty():
    [a] = _plan(SPEC, trash_purge={}).actions
    assert (a.address, a.before, a.after) == ("trash_purge.volume", (), "1h")
    assert "~ trash_purge.volume\n      interval: (none) -> 1h" in plan_text(
        _plan(SPEC, trash_purge={}))
    assert _plan(SPEC, trash_purge={"volume": ("1h",)}).empty
    spec = _with(DEFAULT_SPEC, "images:  {pg_num: 32}",
                 "images:  {pg_num: 32, trash_purge: 120m}")
    assert {(a.pool, a.before, a.after) for a in _plan(spec, trash_purge={
        "volume": ("1h",), "images": ("1d",)}).actions} == {("images", ("1d",), "2h")}
    off = _with(DEFAULT_SPEC, "volume:  {pg_num: 32}", "volume:  {pg_num: 32, trash_purge: off}")
    [gone] = _plan(off, trash_purge={"volume": ("1h", "1d")}).actions
    assert isinstance(gone, SetTrashPurge) and gone.after is None
    assert _plan(SPEC).empty  # schedules not read: nothing planned


@pytest.mark.parametrize("value", ["0m", "1w", "often", "true"])
def test_a_bad_interval_is_refused_with_its_place(value):
    with pytest.raises(SpecError, match=r"pools\.volume\.trash_purge"):
        parse_spec(DEFAULT_SPEC.replace("volume:  {pg_num: 32}",
                                        f"volume:  {{pg_num: 32, trash_purge: {value}}}"))


def test_deferred_deletion_is_rendered_into_every_cinder_backend():
    spec = _with(DEFAULT_SPEC, "{user: cinder-volume, pools: [volume]}",
                 "{user: cinder-volume, pools: [volume], trash: {deferred_deletion: true, "
                 "delay: 0, purge_interval: 60}}")
    conf = configparser.ConfigParser(interpolation=None)
    conf.read_string(ini_text(cinder_volume(spec, "fsid"), "test"))
    backend = conf["rbd-volume"]
    assert (backend["enable_deferred_deletion"], backend["deferred_deletion_delay"],
            backend["deferred_deletion_purge_interval"]) == ("True", "0", "60")
    conf = configparser.ConfigParser(interpolation=None)
    conf.read_string(ini_text(cinder_volume(SPEC, "fsid"), "test"))
    assert "enable_deferred_deletion" not in conf["rbd-volume"]


SECURE = DEFAULT_SPEC.replace("  connect_timeout: 10 ", "  ms_mode: secure\n"
                              "  require_secure: true\n  connect_timeout: 10 ")


def test_require_secure_plans_the_service_modes_as_disruptive():
    spec = parse_spec(SECURE)
    assert (spec.cluster.ms_mode, spec.cluster.require_secure) == ("secure", True)
    plan = _plan(spec, config={"ms_service_mode": "secure"})
    assert {a.name for a in plan.actions if isinstance(a, SetClusterConfig)} == \
        set(REQUIRED) - {"ms_service_mode"}
    assert len(plan.disruptive) == 3
    assert "~ config.global.ms_mon_service_mode   # DISRUPTIVE" in plan_text(plan)
    assert _plan(spec, config=dict.fromkeys(REQUIRED, "secure")).empty


def test_require_secure_needs_secure_mode():
    with pytest.raises(SpecError, match=r"cluster\.require_secure: needs ms_mode: secure"):
        parse_spec(SECURE.replace("ms_mode: secure", "ms_mode: crc"))
    with pytest.raises(SpecError, match=r"cluster\.ms_mode: expected crc or secure"):
        parse_spec(SECURE.replace("ms_mode: secure", "ms_mode: tls"))


def test_audit_warns_for_a_cinder_pool_nothing_purges():
    from cephstack.adopt.trashaudit import FINDING, unpurged_findings

    [found] = unpurged_findings(["volume", "volume-ssd"], {"volume-ssd": ("1d",)}, SPEC)
    assert (found.id, found.entity) == (FINDING, "pool volume")
    assert "rbd trash purge schedule add --pool volume 1d" in found.fix
    assert unpurged_findings(["volume"], None, SPEC) == []  # not read: nothing said
    deferred = _with(DEFAULT_SPEC, "{user: cinder-volume, pools: [volume]}",
                     "{user: cinder-volume, pools: [volume], trash: {delay: 0}}")
    assert unpurged_findings(["volume"], {}, deferred) == []


def test_secure_mode_is_rendered_into_every_hosts_ceph_conf():
    from cephstack.host.contents import check_ceph_conf
    from cephstack.render.bundle import render
    from cephstack.render.model import ClusterFacts

    facts = ClusterFacts("11111111-1111-4111-8111-111111111111",
                         "[v2:192.0.2.1:3300,v1:192.0.2.1:6789] [v2:192.0.2.2:3300]")
    confs = {f.path: f.text for f in render(parse_spec(SECURE), facts, "plain")
             if f.path.endswith("/etc/ceph/ceph.conf")}
    assert {p.split("/")[0] for p in confs} == {"controller", "backup", "compute"}
    for path, text in confs.items():
        conf = configparser.ConfigParser(interpolation=None)
        conf.read_string(text)
        assert (conf["client"]["ms_client_mode"], conf["client"]["ms_mon_client_mode"]) == (
            "secure", "secure"), path
        assert conf["global"]["mon_host"] == "[v2:192.0.2.1:3300] [v2:192.0.2.2:3300]"
        check_ceph_conf(text, facts.fsid, "compute" in path, path)  # host install takes it
    plain = next(f.text for f in render(SPEC, facts, "plain")
                 if f.path.endswith("/etc/ceph/ceph.conf"))
    assert "ms_client_mode" not in plain and "v1:192.0.2.1:6789" in plain
