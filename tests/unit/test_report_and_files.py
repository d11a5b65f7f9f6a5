import json
import os
import stat

import pytest

from cephstack.keyfiles import Secret, keyring_key, keyring_text, write_atomic
from cephstack.plan.make import make_plan
from cephstack.plan.state import ClusterState
from cephstack.report.views import dumps, plan_json, plan_text, summary_line
from cephstack.spec.defaults import DEFAULT_SPEC
from cephstack.spec.load import parse_spec

SPEC = parse_spec(DEFAULT_SPEC)


def test_plan_text_is_terraform_like():
    text = plan_text(make_plan(SPEC, ClusterState("f", osds_in=1)))
    assert "  + pool.images" in text
    assert "  + client.nova" in text
    assert 'caps osd = "profile rbd pool=vm, profile rbd-read-only pool=images"' in text
    assert "key = (sensitive)" in text
    assert text.endswith("Plan: 4 pools to create, 4 clients to create, "
                         "4 keyrings to create, 0 to change, 0 to destroy.")


def test_empty_plan_says_no_changes():
    from tests.unit.test_plan import converged

    plan = make_plan(SPEC, converged(SPEC))
    assert summary_line(plan) == "No changes: the cluster matches the spec."


def test_plan_json_has_a_format_version_and_no_keys():
    from tests.unit.test_plan import converged

    state = converged(SPEC)
    state.keyring_files["client.nova"] = state.keyring_files["client.nova"].__class__(
        "/x", True, Secret("stale"), 0o600)
    data = json.loads(dumps(plan_json(make_plan(SPEC, state))))
    assert data["format_version"] == "1"
    assert data["changes"] is True
    assert "key-of-client.nova" not in json.dumps(data)
    assert "stale" not in json.dumps(data)


def test_secret_never_prints():
    s = Secret("AQBsecretsecretsecretsecretsecretsecret==")
    assert str(s) == repr(s) == "(sensitive)"
    assert f"{s}" == "(sensitive)"
    assert "AQB" not in repr({"k": s})


def test_keyring_round_trip():
    key = Secret("AQDfakefakefakefakefakefakefakefakefak==")
    text = keyring_text("client.glance", key)
    assert keyring_key(text, "client.glance") == key
    assert keyring_key(text, "client.nova") is None
    assert keyring_key("[client.a]\n key=K1\n[client.b]\n\tkey = K2\n", "client.b") == Secret("K2")


@pytest.mark.parametrize("mode", [0o600, 0o640])
def test_secret_file_is_written_atomically_with_its_mode(tmp_path, mode):
    target = tmp_path / "keys" / "ceph.client.x.keyring"
    write_atomic(str(target), "one\n", mode)
    write_atomic(str(target), "two\n", mode)
    assert target.read_text() == "two\n"
    assert stat.S_IMODE(os.stat(target).st_mode) == mode
    assert os.listdir(target.parent) == [target.name]  # no temp file left behind
