"""The access picture: each cephx user -> pool -> what it may do, from the caps.

With a spec the caps are the compiled ones (catalog.desired_clients): what apply gives each
user. Without one, the cluster's caps of its RBD users as they are (audit.rbd_users). Per
user and pool: read, write, execute (class methods: what RBD needs to open images); per
user: whether it can blocklist a client (mon 'profile rbd': lock takeover after a host
crash) and whether it can read other users' keys (mon 'allow *', rx on auth, or an
`auth get` command grant). Plus who holds each key: the services whose needs made the caps
and the hosts (cephstack render's roles) that get its keyring or libvirt secret. A verify
report (`cephstack verify --output json`) marks what its least-privilege matrix proved.

Pure: data in, data and SVG text out. Deterministic: the same input gives the same bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html import escape
from typing import Any

from cephstack.plan.state import ClusterState
from cephstack.spec.caps import Caps, Grant
from cephstack.spec.load import Spec
from cephstack.text import printable

KEYS, ADMIN = "keys", "admin"  # mark columns beyond the pools
# The hosts that hold a user's key besides render's roles: compute gets Nova's and
# Cinder's keys as libvirt secrets (QEMU attaches volumes with Cinder's credentials).
_SECRET_HOLDERS = ("nova", "cinder-volume")
_WRITE_CHECK = re.compile(r"^must not write to pool (\S+)$")
_KEY_CHECK = re.compile(r"^must not read the key of (\S+)$")


@dataclass(frozen=True)
class Cell:
    read: bool = False
    write: bool = False
    execute: bool = False

    @property
    def flags(self) -> str:
        return "".join(c for c, on in (("r", self.read), ("w", self.write),
                                       ("x", self.execute)) if on)


@dataclass(frozen=True)
class Mark:
    """One verify check on this user: `check` as verify named it, `result` pass (refused,
    as it should be), fail (allowed) or skip."""

    check: str
    result: str


@dataclass(frozen=True)
class UserAccess:
    entity: str
    services: tuple[str, ...]
    hosts: tuple[str, ...]
    cells: dict[str, Cell]  # pool -> what the user may do there
    all_pools: bool  # an osd grant without a pool: every pool, present and future
    blocklist: bool
    read_keys: bool
    caps: dict[str, str]
    marks: dict[str, tuple[Mark, ...]] = field(default_factory=dict)  # pool, KEYS, ADMIN
    workflows: tuple[int, int] | None = None  # verify: (passed, run) of its services' steps


@dataclass(frozen=True)
class AccessPicture:
    source: str  # "spec": compiled caps; "cluster": the caps the cluster has
    pools: tuple[str, ...]
    users: tuple[UserAccess, ...]
    verify_run: str | None = None
    verify_passed: bool | None = None


def _covers(grants: frozenset[Grant], perm: str, pool: str) -> bool:
    """Whether `grants` allow `perm` on `pool` (a Grant, not a cap string: a pool's name
    may hold any character)."""
    wanted = Grant("allow", (perm,), pool)
    return any(g.covers(wanted) for g in grants)


def _mon_flags(grants: frozenset[Grant]) -> tuple[bool, bool]:
    """(can blocklist a client, can read other users' keys) from mon caps. Ceph: `osd
    blocklist` needs mon rw on osd (or profile rbd's grant of it); `auth get` needs rx."""
    blocklist = read_keys = False
    for g in grants:
        if g.unparsed:  # what it allows is not known (audit names it)
            continue
        if g.kind == "profile":
            blocklist |= g.perms[:1] in (("rbd",), ("rbd-mirror",))
            continue
        letters = {c for p in g.perms if re.fullmatch(r"[rwx]+", p) for c in p}
        if "*" in g.perms:
            return True, True
        blocklist |= {"r", "w"} <= letters
        read_keys |= {"r", "x"} <= letters
        if "command" in g.other:
            command = " ".join(g.other[g.other.index("command") + 1:])
            blocklist |= "blocklist" in command or "blacklist" in command
            read_keys |= bool(re.match(r"auth (get|export|ls|list|print[-_]key)", command))
    return blocklist, read_keys


def user_access(entity: str, caps: Caps, pools: tuple[str, ...], services: tuple[str, ...],
                hosts: tuple[str, ...]) -> UserAccess:
    by_type = caps.by_type()
    osd = by_type.get("osd", frozenset())
    cells = {p: Cell(_covers(osd, "r", p), _covers(osd, "w", p), _covers(osd, "x", p))
             for p in pools}
    blocklist, read_keys = _mon_flags(by_type.get("mon", frozenset()))
    unrestricted = any(g.pool is None and g.namespace is None and not g.other
                       and not g.unparsed for g in osd)
    return UserAccess(entity, services, hosts, cells, unrestricted, blocklist, read_keys,
                      caps.rendered())


def key_holders(spec: Spec) -> dict[str, tuple[str, ...]]:
    """entity -> the hosts (render's roles) that get its keyring or libvirt secret, and
    the admin host's keyring directory when apply manages keyrings."""
    from cephstack.render.plain import ROLES

    out: dict[str, list[str]] = {}
    for role, services in ROLES.items():
        for kind, keyrings in services.items():
            if kind not in spec.services:
                continue
            for holder in keyrings:
                if holder in spec.services:
                    out.setdefault(f"client.{spec.services[holder].user}", []).append(role)
    if "nova" in spec.services:
        for kind in _SECRET_HOLDERS:
            if kind in spec.services:
                out.setdefault(f"client.{spec.services[kind].user}", []).append("compute")
    if spec.keyrings.manage:
        for entity in {f"client.{s.user}" for s in spec.services.values()} | {
                f"client.{c}" for c in spec.clients}:
            out.setdefault(entity, []).append("admin")
    return {e: tuple(dict.fromkeys(h)) for e, h in sorted(out.items())}


def _verify_marks(report: dict[str, Any], users: dict[str, str]
                  ) -> tuple[dict[str, dict[str, list[Mark]]], dict[str, list[int]]]:
    """entity -> column -> marks, and entity -> [workflow steps passed, run]."""
    marks: dict[str, dict[str, list[Mark]]] = {}
    flows: dict[str, list[int]] = {}
    for step in report.get("steps", []):
        entity = users.get(str(step.get("service", "")))
        name, result = str(step.get("name", "")), str(step.get("result", ""))
        if entity is None:
            continue
        if name.startswith("must not "):
            column = ADMIN
            if m := _WRITE_CHECK.match(name):
                column = m.group(1)
            elif _KEY_CHECK.match(name):
                column = KEYS
            marks.setdefault(entity, {}).setdefault(column, []).append(Mark(name, result))
        elif result != "skip":
            counts = flows.setdefault(entity, [0, 0])
            counts[0] += result == "pass"
            counts[1] += 1
    return marks, flows


def build_access(spec: Spec | None, state: ClusterState | None = None,
                 verify: dict[str, Any] | None = None) -> AccessPicture:
    """The picture from the spec's compiled caps, else from the cluster's caps."""
    if spec is not None:
        from cephstack.spec.catalog import desired_clients

        desired = desired_clients(spec)
        users = {e: (d.caps, d.services) for e, d in desired.items()}
        pools = set(spec.pools)
        holders = key_holders(spec)
        service_users = {k: f"client.{s.user}" for k, s in spec.services.items()}
        source = "spec"
    else:
        from cephstack.adopt.audit import rbd_users, recognise

        assert state is not None, "build_access needs a spec or an observed state"
        roles, _ = recognise(state, None)
        kinds: dict[str, list[str]] = {}
        for role in roles:
            kinds.setdefault(role.entity, []).append(role.service)
        users = {e: (c, tuple(kinds.get(e, ()))) for e, c in sorted(rbd_users(state).items())}
        pools = {n for n, p in state.pools.items() if "rbd" in p.applications}
        holders = {}
        service_users = {r.service: r.entity for r in roles}
        source = "cluster"
    for caps, _ in users.values():
        pools |= {g.pool for g in caps.by_type().get("osd", ()) if g.pool}
    ordered = tuple(sorted(pools))
    marks, flows = _verify_marks(verify or {}, service_users)
    out = []
    for entity, (caps, services) in users.items():
        user = user_access(entity, caps, ordered, services, holders.get(entity, ()))
        mine = {column: tuple(ms) for column, ms in sorted(marks.get(entity, {}).items())}
        flow = flows.get(entity)
        out.append(UserAccess(user.entity, user.services, user.hosts, user.cells,
                              user.all_pools, user.blocklist, user.read_keys, user.caps, mine,
                              (flow[0], flow[1]) if flow else None))
    return AccessPicture(source, ordered, tuple(out),
                         str(verify["run_id"]) if verify and "run_id" in verify else None,
                         bool(verify["passed"]) if verify and "passed" in verify else None)


def refused(marks: tuple[Mark, ...]) -> tuple[int, int]:
    """(checks that were refused as they should be, checks run)."""
    ran = [m for m in marks if m.result != "skip"]
    return sum(m.result == "pass" for m in ran), len(ran)


def access_json(picture: AccessPicture) -> dict[str, Any]:
    return {
        "source": picture.source, "pools": list(picture.pools),
        "verify": {"run_id": picture.verify_run, "passed": picture.verify_passed}
        if picture.verify_run else None,
        "users": [{
            "entity": u.entity, "services": list(u.services), "hosts": list(u.hosts),
            "caps": u.caps, "all_pools": u.all_pools, "blocklist": u.blocklist,
            "read_keys": u.read_keys,
            "pools": {p: c.flags for p, c in u.cells.items() if c.flags},
            "least_privilege": {column: [vars(m) for m in ms]
                                for column, ms in u.marks.items()},
            "workflows": {"passed": u.workflows[0], "run": u.workflows[1]}
            if u.workflows else None,
        } for u in picture.users],
    }


# -- SVG ----------------------------------------------------------------------------------

_ROW, _BOX_H, _TOP = 56, 40, 56
_X_HOST, _X_USER, _X_POOL, _W_HOST, _W_USER, _W_POOL = 16, 226, 596, 140, 240, 230
_STYLE = ("text{font-family:sans-serif;font-size:12px;fill:#1b1f24}"
          ".small{font-size:10px;fill:#57606a}.bad{fill:#b42318}.good{fill:#1a7f37}"
          ".box{fill:#f6f8fa;stroke:#57606a}.risk{fill:#fff1f0;stroke:#b42318}"
          ".held{stroke:#8c959f;stroke-width:1}.write{stroke:#0550ae;stroke-width:2.5}"
          ".read{stroke:#1a7f37;stroke-width:1.5;stroke-dasharray:6 4}"
          ".leak{stroke:#b42318;stroke-width:2;stroke-dasharray:2 3}"
          ".head{font-weight:bold}")


def _y(i: int) -> int:
    return _TOP + i * _ROW


def _x(text: str) -> str:
    """Text for the SVG: no control character (XML 1.0 allows none, not even escaped), the
    markup characters escaped."""
    return escape(printable(text))


def _box(x: int, y: int, w: int, lines: list[tuple[str, str]], risky: bool = False) -> str:
    out = [f'<rect class="{"risk" if risky else "box"}" x="{x}" y="{y}" width="{w}" '
           f'height="{_BOX_H}" rx="5"/>']
    for i, (text, cls) in enumerate(lines):
        attr = f' class="{cls}"' if cls else ""
        out.append(f'<text{attr} x="{x + 8}" y="{y + 16 + i * 14}">{_x(text)}</text>')
    return "".join(out)


def _user_lines(u: UserAccess) -> list[tuple[str, str]]:
    words = ["blocklist" if u.blocklist else "NO blocklist",
             "READS KEYS" if u.read_keys else "own key only"]
    marks = tuple(m for ms in u.marks.values() for m in ms)
    cls = "small"
    if marks:
        ok, ran = refused(marks)
        words.append(f"refused {ok}/{ran}")
        cls = "small good" if ok == ran else "small bad"
    elif not u.blocklist or u.read_keys or u.all_pools:
        cls = "small bad"
    return [(u.entity, "head"), (" · ".join(words), cls)]


def access_svg(picture: AccessPicture, standalone: bool = True) -> str:
    """hosts -> users (who holds each key) -> pools (solid: write, dashed: read only; red
    dotted: a write verify found allowed where it must be refused)."""
    hosts = sorted({h for u in picture.users for h in u.hosts})
    rows = max(len(hosts), len(picture.users), len(picture.pools), 1)
    height = _TOP + rows * _ROW + 40
    width = _X_POOL + _W_POOL + 16
    user_y = {u.entity: _y(i) for i, u in enumerate(picture.users)}
    pool_y = {p: _y(i) for i, p in enumerate(picture.pools)}
    host_y = {h: _y(i) for i, h in enumerate(hosts)}
    ns = ' xmlns="http://www.w3.org/2000/svg"' if standalone else ""
    out = [f'<svg{ns} width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           f'role="img" aria-label="cephx users, the pools they reach and the hosts holding '
           f'their keys"><style>{_STYLE}</style>',
           f'<text class="head" x="{_X_HOST}" y="24">hosts (hold the key)</text>',
           f'<text class="head" x="{_X_USER}" y="24">cephx users '
           f'({"compiled caps" if picture.source == "spec" else "caps in the cluster"})</text>',
           f'<text class="head" x="{_X_POOL}" y="24">pools</text>',
           f'<text class="small" x="{_X_USER}" y="40">solid: read+write · dashed: read only'
           ' · red dotted: write verify found allowed</text>']
    mid = _BOX_H // 2
    for u in picture.users:  # lines first, boxes over them
        y = user_y[u.entity] + mid
        for h in u.hosts:
            out.append(f'<line class="held" x1="{_X_HOST + _W_HOST}" y1="{host_y[h] + mid}" '
                       f'x2="{_X_USER}" y2="{y}"/>')
        for p, cell in u.cells.items():
            leaked = any(m.result == "fail" for m in u.marks.get(p, ()))
            cls = "leak" if leaked else "write" if cell.write else "read" if cell.read else ""
            if cls:
                out.append(f'<line class="{cls}" x1="{_X_USER + _W_USER}" y1="{y}" '
                           f'x2="{_X_POOL}" y2="{pool_y[p] + mid}"><title>'
                           f'{_x(u.entity)} -> {_x(p)}: {cell.flags or "no access"}'
                           f'</title></line>')
    for h in hosts:
        out.append(_box(_X_HOST, host_y[h], _W_HOST, [(h, "head"), (
            "cephstack keyrings" if h == "admin" else "render role", "small")]))
    for u in picture.users:
        risky = u.read_keys or u.all_pools or not u.blocklist or any(
            m.result == "fail" for ms in u.marks.values() for m in ms)
        out.append(_box(_X_USER, user_y[u.entity], _W_USER, _user_lines(u), risky))
    for p in picture.pools:
        readers = [u.entity.removeprefix("client.") for u in picture.users
                   if u.cells[p].read and not u.cells[p].write]
        writers = [u.entity.removeprefix("client.") for u in picture.users if u.cells[p].write]
        detail = f"w: {', '.join(writers) or '-'}" + (f"; r: {', '.join(readers)}"
                                                      if readers else "")
        short = detail if len(detail) <= 40 else detail[:39] + "…"
        out.append(_box(_X_POOL, pool_y[p], _W_POOL, [(p, "head"), (short, "small")]))
    out.append("</svg>")
    return "\n".join(out) + "\n"
