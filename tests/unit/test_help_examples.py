"""Every command's --help ends with real examples, and `cephstack completion bash` completes
commands and options in a real bash."""

import argparse
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cephstack.cli import build_parser

ROOT = Path(__file__).parents[2]


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _examples(help_text: str) -> list[str]:
    lines = help_text.rstrip("\n").splitlines()
    assert "examples:" in lines, "no examples: section"
    start = len(lines) - 1 - lines[::-1].index("examples:")
    return [line.strip() for line in lines[start + 1:]]


def test_every_command_is_walked():
    assert {"init", "plan", "apply", "verify", "status", "fence", "rotate", "render", "host",
            "sandbox", "completion"} <= set(_commands())


@pytest.mark.parametrize("command", sorted(_commands()))
def test_help_ends_with_examples(command):
    examples = _examples(_commands()[command].format_help())
    assert 2 <= len(examples) <= 4, examples
    for line in examples:
        assert line.startswith(f"cephstack {command}"), line


@pytest.mark.parametrize("command", sorted(_commands()))
def test_examples_are_command_lines_the_parser_takes(command):
    for line in _examples(_commands()[command].format_help()):
        words = shlex.split(line)
        if ">" in words:  # a shell redirection, not an argument
            words = words[:words.index(">")]
        args = build_parser(words[1:]).parse_args(words[1:])
        assert args.command == command, line


@pytest.fixture(scope="module")
def script() -> str:
    proc = subprocess.run([sys.executable, "-m", "cephstack", "completion", "bash"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _complete(script: str, *words: str) -> list[str]:
    """COMPREPLY after sourcing the script in bash and completing the last word."""
    line = " ".join(shlex.quote(w) for w in ("cephstack", *words))
    program = (f"{script}\nCOMP_WORDS=({line}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1))\n"
               "_cephstack\nprintf '%s\\n' \"${COMPREPLY[@]}\"\n")
    proc = subprocess.run(["bash", "-c", program], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return [w for w in proc.stdout.splitlines() if w]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_completion_completes_commands_and_options(script):
    assert _complete(script, "pl") == ["plan"]
    assert sorted(_complete(script, "re")) == ["records", "render", "report"]
    assert _complete(script, "--debug", "ap") == ["apply"]
    assert sorted(_complete(script, "")) == sorted([*_commands(), "--debug", "--help",
                                                    "--version"])
    assert _complete(script, "plan", "--pr") == ["--prune"]
    assert _complete(script, "verify", "--evac") == ["--evacuate-wait"]
    assert sorted(_complete(script, "render", "--format", "")) == ["kolla", "plain"]
    assert _complete(script, "host", "") == ["install", "check"]
    assert _complete(script, "host", "install", "") == []  # the bundle: a path, the shell's
    assert _complete(script, "sandbox", "d") == ["down"]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_bash_completion_offers_every_option_of_every_command(script):
    for command, parser in _commands().items():
        offered = set(_complete(script, command, "-"))
        wanted = {o for a in parser._actions for o in a.option_strings}
        assert wanted <= offered, (command, wanted - offered)
