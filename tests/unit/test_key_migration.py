"""Host-by-host migration to aes256k (issue 23), the pure parts: which client sessions prove
a host cannot use aes256k, the per-user refusal, the cluster's allowed types, the Ceph
version rules, and status's notes. Session answers are shaped as measured on Pacific
16.2.15 and Tentacle 20.2.4 monitors."""

from __future__ import annotations

from cephstack.ceph.cephx import AES, AES256K, new_key
from cephstack.ceph.libversion import LibVersion, parse_version, reads_aes256k
from cephstack.ceph.sessions import holders, parse_sessions
from cephstack.day2.keymigration import new_key_type, session_checks, with_keys
from cephstack.day2.keystatus import InsecureKey, key_notes
from cephstack.plan.keytypes import AuthFacts
from cephstack.plan.state import ClientState, ClusterState


def _session(entity: str, release: str, addr: str = "10.0.0.5:0", host: str = "cmp1",
             con_type: str = "client") -> dict:
    return {"name": "client.?", "entity_name": entity, "con_type": con_type,
            "con_features_release": release, "remote_host": host,
            "socket_addr": {"type": "any", "addr": addr, "nonce": 7}}


SESSIONS = [  # a Pacific compute host, a Tentacle controller, a manager's own client
    _session("client.nova", "reef", "10.0.0.5:0", "cmp1"),
    _session("client.nova", "reef", "10.0.0.5:0", "cmp1"),  # two connections, one host
    _session("client.glance", "squid", "10.0.0.2:0", "ctl1"),
    _session("mgr.x", "squid", "10.0.0.9:0", "mon1"),
    {"name": "mon.0", "entity_name": "", "con_type": "mon"},
]
TENTACLE = AuthFacts("tentacle", "aes256k", ("aes", "aes256k"), True)
STATE = ClusterState("f", clients={
    "client.nova": ClientState("client.nova", {}, new_key(key_type=AES)),
    "client.glance": ClientState("client.glance", {}, new_key(key_type=AES)),
    "client.cinder-volume": ClientState("client.cinder-volume", {}, new_key(key_type=AES256K)),
})
SERVICES = {"client.nova": "nova", "client.glance": "glance"}


def test_sessions_keep_clients_only_with_their_ip_host_and_release():
    found = parse_sessions("a", SESSIONS)
    assert [(s.entity, s.address, s.host, s.release) for s in found] == [
        ("client.nova", "10.0.0.5", "cmp1", "reef"), ("client.nova", "10.0.0.5", "cmp1", "reef"),
        ("client.glance", "10.0.0.2", "ctl1", "squid")]
    assert len(holders(found, "client.nova")) == 1
    assert [s.aes256k for s in found] == [False, False, None]  # squid: cannot tell


def test_pacific_label_on_a_pacific_monitor_is_older_than_squid_too():
    [s] = parse_sessions("a", [_session("client.nova", "luminous")])
    assert s.aes256k is False


def test_a_user_held_by_an_old_host_is_refused_naming_the_host():
    refusals, notes = session_checks(["client.nova", "client.glance"], SERVICES, STATE,
                                     parse_sessions("a", SESSIONS), "aes256k")
    assert len(refusals) == 1
    assert refusals[0].startswith("client.nova (nova): 1 host(s)")
    assert "cmp1 (10.0.0.5)" in refusals[0] and "upgrade these hosts first" in refusals[0]
    assert len(notes) == 1 and "ctl1 (10.0.0.2)" in notes[0] and "19.2.6" in notes[0]


def test_no_check_for_aes_or_for_users_already_on_aes256k():
    sessions = parse_sessions("a", [_session("client.cinder-volume", "reef")])
    assert session_checks(["client.nova"], SERVICES, STATE, parse_sessions("a", SESSIONS),
                          "aes") == ([], [])
    assert session_checks(["client.cinder-volume"], {}, STATE, sessions,
                          "aes256k") == ([], [])


def test_sessions_not_read_refuse_rather_than_guess():
    refusals, _ = session_checks(["client.nova"], SERVICES, STATE, None, "aes256k")
    assert "could not be read" in refusals[0]


def test_the_new_type_must_be_allowed_by_the_cluster():
    reef = AuthFacts("reef", "aes", ("aes",))
    assert new_key_type(reef, None) == ("aes", None)
    kind, why = new_key_type(reef, "aes256k")
    assert kind == "aes256k" and "does not allow aes256k" in why and "20.2.4" in why
    assert new_key_type(TENTACLE, "aes256k") == ("aes256k", None)


def test_with_keys_replaces_only_the_named_users():
    key = new_key(key_type=AES256K)
    after = with_keys(STATE, {"client.nova": key, "client.unknown": key})
    assert after.clients["client.nova"].key == key
    assert after.clients["client.glance"] == STATE.clients["client.glance"]
    assert "client.unknown" not in after.clients


def test_versions_that_read_aes256k():
    assert parse_version("ceph version 16.2.15 (618f44) pacific (stable)") == "16.2.15"
    assert parse_version("20.2.4+ds-2") == "20.2.4"
    assert parse_version("2:18.2.7-0.el9") == "18.2.7"
    assert [reads_aes256k(v) for v in [(16, 2, 15), (18, 2, 7), (19, 2, 5), (19, 2, 6),
                                       (20, 2, 3), (20, 2, 4), (21, 0, 0), ()]] == \
        [False, False, False, True, False, True, True, False]
    assert LibVersion("16.2.15", "ceph --version").label() == "Ceph 16.2.15 Pacific"


def test_status_notes_name_the_service_hosts_and_the_fix():
    key = InsecureKey("nova", "client.nova", "aes", "aes256k", ("cmp1 (10.0.0.5)",),
                      ("cmp1 (10.0.0.5)",))
    notes = key_notes([key], ["AUTH_INSECURE_CLIENT_KEY_TYPE", "AUTH_INSECURE_KEYS_ALLOWED"])
    assert notes[0].startswith("Insecure key: nova (client.nova) has an aes key")
    assert "upgrade first" in notes[0] and "rotate nova --key-type aes256k" in notes[0]
    assert notes[1].startswith("Health: AUTH_INSECURE_KEYS_ALLOWED") and "nova" in notes[1]
    assert len(notes) == 2
    other = key_notes([], ["AUTH_INSECURE_CLIENT_KEY_TYPE"])
    assert other == ["Health: AUTH_INSECURE_CLIENT_KEY_TYPE: for no OpenStack service's "
                     "user (another client of the cluster: `ceph health detail`)"]
