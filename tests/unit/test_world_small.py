"""Issue 19's smaller items, each as the operator meets it."""

from __future__ import annotations

import argparse
import builtins
import sys

from cephstack.commands.common import confirm


def test_no_at_the_prompt_says_cancelled(monkeypatch, capsys):
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr(builtins, "input", lambda _: "no")
    assert confirm(argparse.Namespace(yes=False), "Apply these changes?",
                   "nothing applied") is False
    assert capsys.readouterr().err == "cancelled: nothing applied\n"
    monkeypatch.setattr(builtins, "input", lambda _: "yes")
    assert confirm(argparse.Namespace(yes=False), "Apply?", "nothing applied") is True


def test_read_only_commands_read_the_spec_here_as_plan_does(tmp_path, monkeypatch):
    from cephstack.cli import build_parser

    monkeypatch.chdir(tmp_path)
    for argv in (["status"], ["audit"], ["locks"], ["report"], ["fence", "10.0.0.9"],
                 ["unfence", "10.0.0.9"]):
        assert build_parser(argv).parse_args(argv).spec is None  # none here: /etc/ceph
    (tmp_path / "cephstack.yaml").write_text("cluster: {}\n")
    for argv in (["status"], ["audit"], ["locks"], ["report"], ["fence", "10.0.0.9"],
                 ["unfence", "10.0.0.9"]):
        assert build_parser(argv).parse_args(argv).spec == "cephstack.yaml", argv


def test_health_names_the_checks_raised():
    from cephstack.ceph.observe import _health
    from cephstack.report.views import health_line

    status = {"health": {"status": "HEALTH_WARN", "checks": {
        "POOL_NO_REDUNDANCY": {"severity": "HEALTH_WARN"},
        "AUTH_INSECURE_KEYS": {"severity": "HEALTH_WARN"}}},
        "osdmap": {"num_osds": 1, "num_up_osds": 1, "num_in_osds": 1},
        "pgmap": {"num_pgs": 8, "pgs_by_state": [{"state_name": "active+clean", "count": 8}]}}
    assert health_line(_health(status)) == (
        "Cluster: HEALTH_WARN (AUTH_INSECURE_KEYS, POOL_NO_REDUNDANCY), 1 OSD (1 up, 1 in), "
        "8 PGs active+clean")


def test_plan_text_shows_hostile_names_escaped():
    from cephstack.plan.actions import Plan
    from cephstack.report.views import plan_text

    plan = Plan(actions=(), unmanaged_pools=("evil\x1b[2Jpool",), unmanaged_clients=(),
                refusals=(), fingerprint="f")
    text = plan_text(plan)
    assert "\x1b" not in text and "evil\\x1b[2Jpool" in text


def _conf(tmp_path, mon_host: str = "v2:127.0.0.1:1"):
    conf = tmp_path / "ceph.conf"
    conf.write_text(f"[global]\nmon host = {mon_host}\nauth supported = cephx\n")
    return conf


def test_a_missing_keyring_is_bad_input_not_an_unreachable_cluster(tmp_path, capsys):
    from cephstack.cli import main

    code = main(["status", "--conf", str(_conf(tmp_path)), "--keyring",
                 str(tmp_path / "absent.keyring")])
    assert code == 2
    assert "error: keyring not found:" in capsys.readouterr().err


def test_a_keyring_without_the_users_key_asks_no_monitor(tmp_path, capsys):
    from cephstack.cli import main

    keyring = tmp_path / "other.keyring"
    keyring.write_text("[client.other]\n\tkey = AQBn0nNlAAAAABAAGk6Y3g5R0cW4vMzVd3iaVQ==\n")
    code = main(["status", "--conf", str(_conf(tmp_path)), "--keyring", str(keyring)])
    err = capsys.readouterr().err
    assert code == 4
    assert f"{keyring} holds no key for client.admin: nothing was sent to the monitors" in err
    assert "the monitors refused" not in err


def test_an_unreachable_cluster_names_the_monitors_it_tried(tmp_path, capsys):
    from cephstack.cli import main

    keyring = tmp_path / "admin.keyring"
    keyring.write_text("[client.admin]\n\tkey = AQBn0nNlAAAAABAAGk6Y3g5R0cW4vMzVd3iaVQ==\n")
    code = main(["status", "--conf", str(_conf(tmp_path, "v2:127.0.0.1:9")), "--keyring",
                 str(keyring), "--connect-timeout", "1"])
    assert code == 3
    assert "(monitors tried: v2:127.0.0.1:9)" in capsys.readouterr().err
