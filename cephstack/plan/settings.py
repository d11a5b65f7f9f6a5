"""How plans name a monitor setting: where its running value comes from, and the command
that really changes it (`ceph config set` does nothing while ceph.conf or a `tell` sets
it: those layers come first)."""

from __future__ import annotations

from cephstack.plan.state import (
    SOURCE_DATABASE,
    SOURCE_DEFAULT,
    SOURCE_FILE,
    SOURCE_OVERRIDE,
    ClusterState,
    Setting,
)

_FROM = {SOURCE_OVERRIDE: "set with `ceph tell`", SOURCE_FILE: "from the monitors' ceph.conf",
         SOURCE_DATABASE: "from the config database", SOURCE_DEFAULT: "Ceph's default"}


def setting(state: ClusterState, name: str) -> Setting | None:
    return state.settings.get(name)


def source_text(state: ClusterState, name: str) -> str:
    """E.g. "osd_pool_default_size, from the monitors' ceph.conf"; the bare name when the
    source is not known (a state not observed from a cluster)."""
    found = setting(state, name)
    return f"{name}, {_FROM.get(found.source, found.source)}" if found else name


def source_note(state: ClusterState, name: str) -> str:
    """E.g. " (from the monitors' ceph.conf)"; "" when the source is not known."""
    found = setting(state, name)
    return f" ({_FROM.get(found.source, found.source)})" if found else ""


def change_command(state: ClusterState, name: str, value: object) -> str:
    """The command that changes what the monitors run with, for their source of it."""
    found = setting(state, name)
    tell = f"`ceph tell mon.* config set {name} {value}`"
    if found is None or found.source in (SOURCE_DATABASE, SOURCE_DEFAULT):
        return f"`ceph config set mon {name} {value}`"
    if found.source == SOURCE_OVERRIDE:
        return (f"{tell} (it was set that way; it lasts until the monitors restart: keep it "
                f"with `ceph config set mon {name} {value}` too)")
    return (f"`{name} = {value}` in the monitors' ceph.conf, then restart them ({tell} "
            "changes it until then; `ceph config set` does not: the file comes first)")


def settings_json(state: ClusterState) -> dict[str, dict[str, str]]:
    """name -> {value, source, monitors}: what `plan --output json` shows."""
    return {name: {"value": s.value, "source": s.source, "monitors": s.monitors}
            for name, s in sorted(state.settings.items())}
