"""The CLI's contract without a cluster: help, exit codes, errors before any connection."""

import subprocess
import sys
from pathlib import Path

import pytest

from cephstack.cli import main

ROOT = Path(__file__).parents[2]


COMMANDS = ["init", "plan", "apply", "verify", "audit", "import", "render", "secrets", "host",
            "sandbox"]


@pytest.mark.parametrize("argv", [[]] + [[c] for c in COMMANDS])
def test_every_command_has_help(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main([*argv, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "usage: cephstack" in out and "exit codes:" in out


def test_module_entry_point_works():
    proc = subprocess.run([sys.executable, "-m", "cephstack", "--version"], capture_output=True,
                          text=True, cwd=ROOT)
    assert proc.returncode == 0 and proc.stdout.startswith("cephstack ")


def test_init_writes_the_default_spec(tmp_path, capsys):
    out = tmp_path / "s.yaml"
    assert main(["init", "--out", str(out), "--keyring-dir", "keys", "--render-dir", "r"]) == 0
    assert 'directory: "keys"' in out.read_text()
    assert '\nrender: {directory: "r", format: plain}\n' in out.read_text()
    odd = tmp_path / "odd.yaml"  # a path YAML would otherwise misread stays a path
    assert main(["init", "--out", str(odd), "--keyring-dir", "k: #x"]) == 0
    from cephstack.spec.load import load_spec
    assert load_spec(odd).keyrings.directory == str(tmp_path / "k: #x")
    assert main(["init", "--out", str(out)]) == 1  # never overwrites without --force
    assert "exists" in capsys.readouterr().err


def test_invalid_spec_exits_2_with_file_and_line(tmp_path, capsys):
    spec = tmp_path / "bad.yaml"
    spec.write_text("pools:\n  images: {pg_num: 32}\nservices:\n  nova: {user: nova, pool: vm}\n")
    assert main(["plan", "-f", str(spec)]) == 2
    err = capsys.readouterr().err
    assert f"{spec}:4: services.nova.pool: pool 'vm' is not declared" in err


def test_missing_conf_exits_3(tmp_path, capsys):
    spec = tmp_path / "s.yaml"
    spec.write_text("cluster: {conf: /nonexistent/ceph.conf}\n")
    assert main(["plan", "-f", str(spec)]) == 3
    assert "ceph.conf not found: /nonexistent/ceph.conf" in capsys.readouterr().err


def test_apply_without_a_terminal_needs_yes(tmp_path, monkeypatch):
    from cephstack.commands import plan_apply

    class Args:
        yes = False
        plan = None

    with open("/dev/null") as devnull:
        monkeypatch.setattr(sys, "stdin", devnull)
        assert plan_apply._confirm(Args()) is False


def test_pure_modules_do_not_load_librados():
    code = ("import sys, cephstack.plan.make, cephstack.adopt.audit, cephstack.adopt.describe, "
            "cephstack.report.views, "
            "cephstack.render.bundle, cephstack.cli; "
            "sys.exit('rados' in sys.modules or 'rbd' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0


def test_each_command_line_builds_only_what_it_needs():
    from cephstack.cli import build_parser

    every = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for name in every:  # a command registered alone parses as with every family
        assert name in build_parser([name])._subparsers._group_actions[0].choices
    # plan and apply import no other command's implementation (start-up of a no-op apply)
    proc = subprocess.run([sys.executable, "-c", "import sys; from cephstack.cli import "
                           "build_parser; build_parser(['--debug', 'apply', '-f', 'x'])."
                           "parse_args(['apply', '-f', 'x']); print(' '.join(sys.modules))"],
                          capture_output=True, text=True, cwd=ROOT, check=True)
    loaded = set(proc.stdout.split())
    assert not loaded & {"cephstack.day2.status", "cephstack.adopt.audit", "cephstack.verify",
                         "cephstack.render", "yaml", "rados"}


def test_output_to_a_reader_that_went_away_does_not_crash_the_command():
    """`cephstack ... --output json | head`: the pipe closes early; the command still ends
    with its own exit code, and no BrokenPipeError traceback reaches stderr."""
    import subprocess
    import sys
    import time

    script = ("import sys\n"
              "from cephstack.commands.common import print_out\n"
              "print_out('x' * 200_000)\n"  # more than a pipe holds: blocks until closed
              "print_out('after the reader left')\n"
              "sys.exit(7)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.read(10)
    time.sleep(0.2)  # the writer is blocked on the full pipe
    proc.stdout.close()
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 7
    assert b"BrokenPipe" not in err and b"Traceback" not in err, err.decode()
