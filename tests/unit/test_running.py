"""The running values of the settings plans depend on (cephstack/ceph/running.py) and how
plans name them (cephstack/plan/settings.py)."""

from cephstack.ceph.running import from_diff, monitors_of, settings_of
from cephstack.plan.make import make_plan
from cephstack.plan.settings import change_command, source_text
from cephstack.plan.state import ClusterState, Setting
from cephstack.spec.load import parse_spec

# As a Pacific monitor answers `config diff` (measured): only options not at their default.
DIFF_FILE = {"diff": {
    "osd_pool_default_size": {"default": 3, "file": 1, "final": 1},
    "mon_allow_pool_delete": {"default": False, "file": True, "final": True},
    "mon_max_pg_per_osd": {"default": 250, "override": 400, "final": 400},
    "mon_max_pool_pg_num": {"default": 65536, "mon": 1024, "final": 1024},
    "osd_pool_default_min_size": {"default": 0, "mon": 2, "file": 1, "final": 1},
}}


def test_the_running_value_and_the_layer_it_comes_from():
    assert from_diff(DIFF_FILE, "osd_pool_default_size") == Setting("1", "file")
    assert from_diff(DIFF_FILE, "mon_max_pg_per_osd") == Setting("400", "override")
    assert from_diff(DIFF_FILE, "mon_max_pool_pg_num") == Setting("1024", "config database")
    assert from_diff(DIFF_FILE, "mon_allow_pool_delete") == Setting("true", "file")
    # ceph.conf comes before the config database: the file's value runs.
    assert from_diff(DIFF_FILE, "osd_pool_default_min_size") == Setting("1", "file")
    assert from_diff(DIFF_FILE, "osd_pool_default_crush_rule") == Setting("-1", "default")
    assert from_diff(None, "osd_pool_default_size") is None


def test_the_leader_is_used_and_disagreement_named():
    other = {"diff": {"osd_pool_default_size": {"default": 3, "mon": 2, "final": 2}}}
    out = settings_of({"b": DIFF_FILE, "a": other}, [])  # b first in quorum: the leader
    assert out["osd_pool_default_size"] == Setting(
        "1", "file", "mon.b (used; others differ: mon.a 2)")
    assert out["mon_max_pool_pg_num"].monitors == "mon.b (used; others differ: mon.a 65536)"
    assert monitors_of({"quorum_names": ["b", "a"]}) == ["b", "a"]


def test_without_an_answer_the_database_then_the_default():
    config = [{"section": "global", "name": "osd_pool_default_size", "value": "2"}]
    out = settings_of({}, config)
    assert out["osd_pool_default_size"] == Setting("2", "config database")
    assert out["mon_max_pg_per_osd"] == Setting("250", "default")


def test_hints_name_the_command_that_changes_the_running_value():
    state = ClusterState("f", settings=settings_of({"a": DIFF_FILE}, []))
    assert "ceph.conf, then restart" in change_command(state, "mon_allow_pool_delete", "false")
    assert change_command(state, "mon_max_pg_per_osd", 500).startswith(
        "`ceph tell mon.* config set mon_max_pg_per_osd 500`")
    assert change_command(state, "mon_max_pool_pg_num", 2048) == \
        "`ceph config set mon mon_max_pool_pg_num 2048`"
    assert source_text(state, "osd_pool_default_size") == \
        "osd_pool_default_size, from the monitors' ceph.conf"


def test_plan_says_where_the_default_size_comes_from_and_shows_the_settings():
    settings = settings_of({"a": {"diff": {
        "osd_pool_default_size": {"default": 3, "file": 2, "final": 2}}}}, [])
    state = ClusterState("f", osds_in=1, default_pool_size=2, settings=settings)
    plan = make_plan(parse_spec("pools: {a: {pg_num: 8, min_size: 3}}"), state)
    assert any("size 2 (the cluster's default, osd_pool_default_size, from the monitors' "
               "ceph.conf)" in r for r in plan.refusals)
    assert plan.settings["osd_pool_default_size"] == {"value": "2", "source": "file",
                                                      "monitors": "mon.a"}
