"""The cephstack command line: builds the parser from the command modules and maps errors
to exit codes. Commands live in cephstack/commands/, one module per family; with it they
are the only code that prints, prompts or picks exit codes.

Heavy imports (yaml, rados) happen inside the commands, so `--help` and a no-op apply
start fast.

A command runs in a worker thread while the main thread waits: SIGINT and SIGTERM are
recorded (cephstack.interrupt), the command unwinds at its next safe point with the
cleanup it owes, and the process ends within its grace with exit 130/143, never inside
librados. With `--output json` every outcome, errors included, is one JSON document.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time

from cephstack import __version__
from cephstack.commands import (
    adopt,
    common,
    completion,
    fence,
    host,
    init,
    plan_apply,
    records,
    render,
    report,
    rotate,
    sandbox,
    status,
    verify,
)
from cephstack.commands.common import EXIT_CODES, print_err, print_out
from cephstack.errors import EXIT_FAILED, CephstackError, Interrupted

# The order of `cephstack --help`.
# completion comes last: it reads every command registered before it.
_FAMILIES = (init, plan_apply, verify, adopt, status, fence, rotate, records, report, render,
             host, sandbox, completion)


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser of every command; given the command line, only as far as the family of
    the command it names (`cephstack plan` needs neither verify's nor status' parsers,
    nor what they import)."""
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="cephstack", formatter_class=fmt, epilog=EXIT_CODES,
        description="Ceph RBD for OpenStack: declare pools and services once, "
                    "plan, apply, and keep them so.")
    parser.add_argument("--version", action="version", version=f"cephstack {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    command = _command_named(argv)
    for family in _FAMILIES:
        family.register(sub, fmt)
        if command is not None and command in sub.choices:
            break
    return parser


def _command_named(argv: list[str] | None) -> str | None:
    """The command a command line names: its first word that is not a global option. None
    when it names none (help, --version, nothing): then every family is registered."""
    for word in argv or ():
        if word == "--debug":
            continue
        return None if word.startswith("-") else word
    return None


def main(argv: list[str] | None = None) -> int:
    """The CLI. Without `argv` it is the process itself (sys.argv): a signal that arrives
    once the command has finished is then ignored (its result stands and the exit code is
    the command's), not left to Python's default handler at exit."""
    args = build_parser(sys.argv[1:] if argv is None else argv).parse_args(argv)
    as_json = getattr(args, "output", None) == "json"
    debug = args.debug or bool(os.environ.get("CEPHSTACK_DEBUG"))
    common.reset_output()
    try:
        code = _run(args, as_json, keep_handlers=argv is None)
    except CephstackError as e:
        if debug:
            raise
        return _report(e.as_json(), str(e), e.exit_code, as_json)
    except KeyboardInterrupt:  # only when main() runs outside the main thread
        return _report({"kind": "interrupted", "message": "interrupted", "hint": None},
                       "interrupted", 130, as_json)
    except Exception as e:
        if debug or not as_json:
            raise
        return _report({"kind": "internal", "message": f"{type(e).__name__}: {e}",
                        "hint": "run with --debug for the traceback"}, "", EXIT_FAILED, True)
    if as_json and code not in (0, None) and not common.stdout_used():
        # A command that reported its failure as a line on stderr: still one document.
        message = common.last_error() or f"{args.command} failed"
        print_out(json.dumps({"error": {"kind": "failed", "message": message, "hint": None}}))
    return code


def _report(error: dict, text: str, code: int, as_json: bool) -> int:
    if as_json:
        print_out(json.dumps({"error": error}))
    else:
        print_err(f"error: {text}")
    return code


def _run(args: argparse.Namespace, as_json: bool, keep_handlers: bool = False) -> int:
    """Run the command in a worker thread; the main thread waits and handles signals.
    `keep_handlers`: leave the recording handlers in place afterwards (the process ends
    with the command)."""
    from cephstack import interrupt
    interrupt.reset()
    if threading.current_thread() is not threading.main_thread():
        return args.func(args)
    outcome: dict[str, object] = {}
    done = threading.Event()

    def work() -> None:
        try:
            outcome["code"] = args.func(args)
        except BaseException as e:  # noqa: BLE001 - handed over to the main thread
            outcome["error"] = e
        finally:
            done.set()

    previous = {sig: signal.signal(sig, lambda signum, _: interrupt.request(signum))
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        threading.Thread(target=work, name="cephstack-command", daemon=True).start()
        while not done.wait(0.1) and interrupt.requested() is None:
            pass
        if interrupt.requested() is not None:
            _interrupted(done, outcome, as_json)  # returns only if the command had finished
    finally:
        if not keep_handlers:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    error = outcome.get("error")
    if isinstance(error, BaseException):
        raise error
    return outcome["code"]  # type: ignore[return-value]


def _interrupted(done: threading.Event, outcome: dict[str, object], as_json: bool) -> None:
    """Give the command its grace to unwind (its finally blocks: cleanup, lock release),
    then end the process with 128 + signal, without interpreter teardown: librados threads
    may still run. Returns only if the command failed in a way the main thread reports."""
    from cephstack import interrupt
    signum = interrupt.requested() or signal.SIGINT
    name = signal.Signals(signum).name
    grace = interrupt.grace()
    if grace > 2:
        print_err(f"interrupted by {name}: cleaning up (at most {grace:.0f} s; "
                  "again to stop at once)")
    deadline = time.monotonic() + grace
    while not done.is_set() and time.monotonic() < deadline and interrupt.count() < 2:
        done.wait(0.05)
    message, hint = f"interrupted by {name}", interrupt.hint()
    error = outcome.get("error")
    if done.is_set() and "code" in outcome:
        # It finished (and printed its result) before it reached a safe point.
        message += " as it finished: its result stands"
        hint = None
    elif done.is_set() and not isinstance(error, Interrupted):
        if not isinstance(error, CephstackError):
            return  # a crash: main() reports it
        message += f"; {error.message}"  # it failed on its way out (its cleanup, say)
        hint = error.hint or hint
    elif not done.is_set():
        interrupt.run_abandon_callbacks(0.6)
        message += f"; the command did not stop within {grace:g} s"
    from cephstack.commands.common import stdout_used

    _report({"kind": "interrupted", "message": message, "hint": hint,
             "signal": name}, message + (f"\n  hint: {hint}" if hint else ""),
            128 + signum, as_json and not stdout_used())  # never a second JSON document
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(128 + signum)
