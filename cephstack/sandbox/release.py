"""Other Ceph releases on this machine: a Debian chroot per release, built on first use.

Debian ships Reef (18.2) in trixie and Tentacle (20.2) in forky; Pacific (16.2) is the
host's own Debian 12 packages. A release's root is built with debootstrap (minbase) from
the mirror the host's apt already uses, with the Ceph packages, python3-rados/rbd and
python3-venv, into a temporary directory renamed into place only once complete: a build
that failed (no network, no space) leaves nothing that would be reused.

Where: $CEPHSTACK_RELEASES_DIR, default /var/cache/cephstack/releases/<release> (root
only: debootstrap and chroot need it); the mirror: $CEPHSTACK_RELEASES_MIRROR, default the
host apt's. About 2 minutes and 1 GB each. `remove_root` (or
`rm -rf` of the directory: nothing stays mounted) removes one.

Every command in a root runs through `in_root`: its own mount namespace (proc, /dev, /sys
and the given host directories bind-mounted at the same paths), so paths of a sandbox or
a project are valid on both sides and nothing stays mounted once the process ends.
"""

from __future__ import annotations

import fcntl
import functools
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cephstack.errors import CephstackError

DEFAULT_DIR = "/var/cache/cephstack/releases"
VENV = "/opt/cephstack/venv"  # in a root: cephstack's venv there (scripts/bootstrap)
PROJECT = Path(__file__).resolve().parents[2]  # the source tree (scripts/bootstrap)
_MARKER = ".cephstack-release.json"  # written last: its presence means "complete"
_SID_SCRIPT = "/usr/share/debootstrap/scripts/sid"
_FALLBACK_MIRROR = "http://deb.debian.org/debian"
_MIN_FREE = 2 << 30  # a root takes ~1 GB; apt needs room for the archives too
PACKAGES = ("ceph-mon", "ceph-osd", "ceph-mgr", "ceph-common", "rbd-mirror",
            "python3-rados", "python3-rbd", "python3-venv", "ca-certificates")
# Passed into a root from the caller's environment (pip's and TLS settings, proxies).
_ENV_PASS = re.compile(r"(PIP_\w+|SSL_CERT_\w+|REQUESTS_CA_BUNDLE|[a-z]+_proxy|[A-Z]+_PROXY|"
                       r"CEPHSTACK_\w+|PYTHONUNBUFFERED|PYTHONDONTWRITEBYTECODE|TERM)")
# Copied from the host into a root before its packages are installed.
_HOST_FILES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pip.conf", "/etc/xdg/pip",
               "/etc/resolv.conf")


class ReleaseError(CephstackError):
    kind = "release"


@dataclass(frozen=True)
class Release:
    name: str
    version: str  # the Ceph major.minor Debian ships in `suite`
    suite: str  # the Debian suite that ships it


RELEASES = {r.name: r for r in (Release("pacific", "16.2", "bookworm"),
                                Release("reef", "18.2", "trixie"),
                                Release("tentacle", "20.2", "forky"))}
HOST = "host"  # the host's own Ceph packages, whatever release they are


@functools.cache
def host_version() -> str | None:
    """The host's own Ceph version ("16.2.15"), None without ceph-common."""
    try:
        out = subprocess.run(["ceph", "--version"], capture_output=True, text=True,
                             timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r"ceph version (\d+\.\d+\.\d+)", out)
    return found.group(1) if found else None


def uses_host(name: str) -> bool:
    """Whether release `name` is the host's own packages (no root needed)."""
    if name == HOST:
        return True
    version = host_version()
    return version is not None and version.startswith(release(name).version + ".")


def release(name: str) -> Release:
    try:
        return RELEASES[name]
    except KeyError:
        raise ReleaseError(f"unknown Ceph release {name!r}: one of "
                           f"{', '.join(RELEASES)}") from None


def releases_dir() -> Path:
    return Path(os.environ.get("CEPHSTACK_RELEASES_DIR") or DEFAULT_DIR)


def root_path(name: str) -> Path:
    return releases_dir() / release(name).name


def built(name: str) -> dict | None:
    """What a complete root records about itself (suite, Ceph version, Python, build
    time), or None when there is none."""
    try:
        return json.loads((root_path(name) / _MARKER).read_text())
    except (OSError, ValueError):
        return None


def host_mirror() -> str:
    """The Debian mirror the host's apt uses (its first non-security `deb` source)."""
    candidates: list[str] = []
    sources = Path("/etc/apt/sources.list.d")
    for path in sorted(sources.glob("*.sources")) if sources.is_dir() else []:
        for stanza in path.read_text().split("\n\n"):
            fields = dict(re.findall(r"(?m)^(\w[\w-]*):\s*(.*)$", stanza))
            if fields.get("Enabled", "yes") != "no" and "deb" in fields.get("Types", "").split():
                candidates += fields.get("URIs", "").split()
    for path in [Path("/etc/apt/sources.list"), *sorted(sources.glob("*.list"))]:
        if path.is_file():
            candidates += re.findall(r"(?m)^deb\s+(?:\[[^]]*\]\s+)?(\S+)", path.read_text())
    for uri in candidates:
        if "security" not in uri and uri.rstrip("/").endswith("/debian"):
            return uri
    return _FALLBACK_MIRROR


def _running_in(path: Path) -> list[int]:
    """Processes whose root directory is `path` (daemons of a sandbox of that release):
    their mounts are in their own namespaces, so /proc/PID/root says where they run."""
    target, found = str(path.resolve()), []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and os.readlink(proc / "root") == target:
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def root_env(**extra: str) -> dict[str, str]:
    """The environment of a command in a root: the caller's pip, TLS and proxy settings,
    not its Python or library paths (those name the host's)."""
    env = {k: v for k, v in os.environ.items() if _ENV_PASS.fullmatch(k)}
    if "://" not in env.get("PIP_FIND_LINKS", "://"):  # a host directory, not in the root
        del env["PIP_FIND_LINKS"]
    env.update(PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
               HOME="/root", LANG="C.UTF-8", DEBIAN_FRONTEND="noninteractive", **extra)
    return env


# Mounts proc, /dev, /sys and each bind (host path -> the same path in the root), then
# runs the command in the root from the given directory. All in a private mount
# namespace: the mounts end with the last process in it (daemons included).
_WRAPPER = r"""set -e
root=$1; n=$2; shift 2
while [ "$n" -gt 0 ]; do
  mkdir -p "$root$1"; mount --rbind "$1" "$root$1"; shift; n=$((n-1))
done
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount --rbind /sys "$root/sys" 2>/dev/null || true
cwd=$1; shift
exec chroot "$root" /bin/sh -c 'cd "$0" && exec "$@"' "$cwd" "$@"
"""


def in_root(root: Path, argv: Sequence[str], binds: Sequence[str | Path] = (),
            cwd: str | Path = "/") -> list[str]:
    """The command line that runs `argv` in `root` with `binds` at the same paths."""
    paths = [str(Path(b).absolute()) for b in binds]
    return ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c",
            _WRAPPER, "in-root", str(root), str(len(paths)), *paths, str(cwd), *argv]


def run_in_root(root: Path, argv: Sequence[str], binds: Sequence[str | Path] = (),
                cwd: str | Path = "/", **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(in_root(root, argv, binds, cwd), env=root_env(), **kwargs)


def ensure_root(name: str, log=None) -> Path:
    """The root of release `name`, built first if there is none (None for the host's
    own release). Reused when complete; two builds at once wait for each other."""
    rel = release(name)
    final = root_path(name)
    if built(name):
        return final
    _check_can_build(final.parent)
    final.parent.mkdir(parents=True, exist_ok=True)
    with open(final.parent / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if built(name):  # another run built it while this one waited
            return final
        _remove_tree(final)  # incomplete: never reused
        for stale in final.parent.glob(f".{name}.build-*"):
            _remove_tree(stale)
        work = final.parent / f".{name}.build-{os.getpid()}"
        try:
            _build(rel, work, log or (lambda _msg: None))
            work.rename(final)
        except BaseException:
            _remove_tree(work)
            raise
    return final


_venv_checked: set[str] = set()


def ensure_venv(name: str, log=None) -> Path:
    """The root of release `name` with cephstack's venv in it (scripts/bootstrap run there
    once per process: it does nothing when the venv is current)."""
    root = ensure_root(name, log)
    if name in _venv_checked:
        return root
    if log and not (root / VENV.lstrip("/")).exists():
        log(f"creating cephstack's venv in the {name} root (pip, about 10 s) ...")
    proc = subprocess.run(
        in_root(root, ["scripts/bootstrap"], [PROJECT], PROJECT), capture_output=True,
        text=True, env=root_env(CEPHSTACK_VENV=VENV, CEPHSTACK_MINIMAL="1"))
    if proc.returncode != 0:
        raise ReleaseError(f"scripts/bootstrap failed in the {name} root (exit "
                           f"{proc.returncode}): {(proc.stderr or proc.stdout)[-1200:]}",
                           hint="pip needs the network (its settings: /etc/pip.conf, "
                           "copied into the root when it was built)")
    _venv_checked.add(name)
    return root


def cli_argv(name: str, args: Sequence[str], binds: Sequence[str | Path] = (),
             cwd: str | Path = ".") -> tuple[list[str], dict[str, str]]:
    """The command line and environment that run `cephstack ARGS` in the root of release
    `name` with that release's python3-rados (the project, `cwd` and `binds` at the same
    paths), building the root and its venv first if needed."""
    root = ensure_venv(name)
    cwd = Path(cwd).absolute()
    argv = in_root(root, [f"{VENV}/bin/python", "-m", "cephstack", *args],
                   [PROJECT, cwd, *binds], cwd)
    return argv, root_env(PYTHONPATH=str(PROJECT))


def remove_root(name: str) -> bool:
    """Remove the root of release `name` (and any unfinished build). Returns whether
    there was one."""
    final = root_path(name)
    found = final.exists()
    _remove_tree(final)
    for stale in final.parent.glob(f".{name}.build-*"):
        found = True
        _remove_tree(stale)
    return found


def _remove_tree(path: Path) -> None:
    if not path.exists():
        return
    running = _running_in(path)
    if running:  # its files would be removed under them
        raise ReleaseError(f"{path} is in use: {len(running)} process(es) run in it (pid "
                           f"{running[0]}, ...)", hint="stop the sandboxes of this release "
                           "first (cephstack sandbox down --dir DIR)")
    shutil.rmtree(path)


def _check_can_build(parent: Path) -> None:
    if os.geteuid() != 0:
        raise ReleaseError("building a release root needs root (debootstrap, chroot)",
                           hint=f"run as root, or point CEPHSTACK_RELEASES_DIR at roots "
                           f"built by root (now {parent})")
    for tool in ("debootstrap", "unshare", "chroot"):
        if shutil.which(tool) is None:
            raise ReleaseError(f"{tool} not found", hint="apt-get install debootstrap")
    if not Path(_SID_SCRIPT).exists():
        raise ReleaseError(f"{_SID_SCRIPT} not found", hint="apt-get install debootstrap")
    existing = parent
    while not existing.exists():
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    if free < _MIN_FREE:
        raise ReleaseError(f"not enough space for a release root in {parent}: "
                           f"{free >> 20} MiB free, {_MIN_FREE >> 20} MiB needed",
                           hint="free some space or set CEPHSTACK_RELEASES_DIR")


def _step(what: str, argv: Sequence[str], log, **kwargs) -> None:
    log(f"{what} ...")
    proc = subprocess.run(argv, capture_output=True, text=True, env=root_env(), **kwargs)
    if proc.returncode != 0:
        tail = (proc.stderr.strip() or proc.stdout.strip())[-1200:]
        raise ReleaseError(f"building the release root failed at: {what} "
                           f"(exit {proc.returncode}): {tail}",
                           hint="check the network and the mirror; nothing half-built "
                           "is kept, the next run starts again")


def _build(rel: Release, work: Path, log) -> None:
    started = time.monotonic()
    mirror = os.environ.get("CEPHSTACK_RELEASES_MIRROR") or host_mirror()
    # debootstrap mounts proc in the target itself: a private namespace keeps a killed
    # build from leaving it mounted.
    _step(f"debootstrap {rel.suite} from {mirror}",
          ["unshare", "--mount", "--propagation", "private", "--", "debootstrap",
           "--variant=minbase", rel.suite, str(work), mirror, _SID_SCRIPT], log)
    for host in _HOST_FILES:
        src, dst = Path(host), work / host.lstrip("/")
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        elif src.is_file():
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
    # A mirror snapshot's Release files are past their Valid-Until; the host accepts them.
    (work / "etc/apt/apt.conf.d/99cephstack").write_text(
        'Acquire::Check-Valid-Until "false";\nAPT::Install-Recommends "false";\n')
    # No service starts at install: the sandbox runs its daemons itself.
    policy = work / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    _step("apt-get update", in_root(work, ["apt-get", "update", "-q"]), log)
    _step(f"apt-get install {' '.join(PACKAGES)}",
          in_root(work, ["apt-get", "install", "-y", "-q", *PACKAGES]), log)
    # ca-certificates rebuilt the bundle from its own list: the host's may hold more CAs
    # (a proxy's), which pip and TLS clients in the root need.
    shutil.copyfile(_HOST_FILES[0], work / _HOST_FILES[0].lstrip("/"))
    _step("apt-get clean", in_root(work, ["apt-get", "clean"]), log)
    versions = subprocess.run(
        in_root(work, ["/bin/sh", "-c", "ceph --version; python3 -c 'import sys, rados; "
                       "print(sys.version.split()[0])'"]),
        capture_output=True, text=True, env=root_env())
    lines = versions.stdout.split("\n")
    if versions.returncode != 0 or len(lines) < 2:
        raise ReleaseError(f"the {rel.name} root does not run ceph or python3-rados: "
                           f"{versions.stderr.strip()[-400:]}")
    ceph_version = lines[0].split()[2] if len(lines[0].split()) > 2 else lines[0]
    if not ceph_version.startswith(rel.version + "."):
        raise ReleaseError(f"{rel.suite} gave Ceph {ceph_version}, not {rel.name} "
                           f"({rel.version}.x)", hint="Debian moved on: update RELEASES")
    record = {"release": rel.name, "suite": rel.suite, "mirror": mirror,
              "ceph": ceph_version, "python": lines[1].strip(),
              "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "seconds": round(time.monotonic() - started)}
    (work / _MARKER).write_text(json.dumps(record, indent=2) + "\n")
    log(f"built {rel.name}: Ceph {ceph_version}, Python {record['python']}, "
        f"{record['seconds']} s")


_USAGE = """usage: python -m cephstack.sandbox.release build|remove|show RELEASE...
       python -m cephstack.sandbox.release run RELEASE [--bind DIR]... -- CEPHSTACK-ARGS...
build: the root of each release (reused when complete); remove: delete it; show: what
it records; run: cephstack itself in the root, with the current directory and each DIR
at the same paths (e.g. `run tentacle -- apply -f cephstack.yaml`)."""


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 2 or args[0] not in ("build", "remove", "show", "run") or \
            (args[0] == "run" and "--" not in args):
        print(_USAGE, file=sys.stderr)
        return 2
    try:
        if args[0] == "run":
            head, rest = args[1:args.index("--")], args[args.index("--") + 1:]
            binds = [head[i + 1] for i, a in enumerate(head[:-1]) if a == "--bind"]
            command, env = cli_argv(head[0], rest, binds)
            return subprocess.run(command, env=env).returncode
        for name in args[1:]:
            if args[0] == "build":
                print(ensure_root(name, log=lambda m: print(m, file=sys.stderr, flush=True)))
            elif args[0] == "remove":
                print(f"{name}: {'removed' if remove_root(name) else 'none'}")
            else:
                print(json.dumps(built(name)))
    except ReleaseError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
