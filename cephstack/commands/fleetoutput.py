"""What every command over a fleet prints on stderr: progress lines under the cluster's
name, and its failures (cephstack.report.fleetviews.failure_lines)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from cephstack.commands.common import print_err

_stderr_lock = threading.Lock()


def progress_printer(as_json: bool, name: str, named: bool = True) -> Callable[[str], None]:
    """Progress lines on stderr, each whole (the clusters' threads print at once), under
    the cluster's name (`named`: a spec of several clusters); none with --output json."""
    def show(line: str) -> None:
        with _stderr_lock:
            print_err(f"  {name}: {line}" if named else f"  {line}")

    return (lambda _: None) if as_json else show


def report_failures(multi, as_json: bool) -> None:
    """On stderr: each failure in full with --output json; in text, where stdout shows each
    under its cluster, one line naming them."""
    from cephstack.report.fleetviews import failure_lines

    for line in failure_lines(multi, as_json):
        print_err(line)
