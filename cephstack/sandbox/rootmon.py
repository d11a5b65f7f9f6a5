"""Monitor commands to a sandbox of another release, through that release's own librados.

A sandbox of Reef or Tentacle runs its daemons in the release's root; its admin keyring
is of that release's key type (aes256k on Tentacle), which the host's librados may not
read. So the sandbox sends its mon commands through a helper process in the root:
`python3 -m cephstack.sandbox.rootmon CONF KEYRING TIMEOUT`, the root's python3-rados
under cephstack's own adapter, one JSON request or answer a line, requests served
concurrently (the monitor folds concurrent OSD map changes into one commit).
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from cephstack import errors

_PROJECT = Path(__file__).resolve().parents[2]  # holds the cephstack package


class RootConnection:
    """The few CephConnection calls a sandbox makes (mon, concurrently), served in a
    release root. A context manager, like CephConnection."""

    def __init__(self, root: Path, conf: Path, keyring: Path, timeout: float) -> None:
        from cephstack.sandbox.release import in_root, root_env

        self.commands_sent = 0
        self._lock = threading.Lock()
        self._waiting: dict[int, Future] = {}
        argv = in_root(root, ["python3", "-m", "cephstack.sandbox.rootmon", str(conf),
                              str(keyring), str(timeout)],
                       binds=[conf.parent, _PROJECT], cwd=_PROJECT)
        self._proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True,
                                      env=root_env(PYTHONPATH=str(_PROJECT)))
        ready = self._proc.stdout.readline()
        if not ready:
            raise errors.ClusterUnreachable(
                f"the monitor helper in {root} ended: {self._proc.stderr.read()[-800:]}")
        answer = json.loads(ready)
        if "error" in answer:
            self.close()
            raise _error(answer["error"])
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self._proc.stdout:
            answer = json.loads(line)
            with self._lock:
                future = self._waiting.pop(answer["id"])
            if "error" in answer:
                future.set_exception(_error(answer["error"]))
            else:
                future.set_result(answer["result"])
        with self._lock:  # the helper ended: nothing more will answer
            for future in self._waiting.values():
                future.set_exception(errors.ClusterUnreachable("the monitor helper ended"))
            self._waiting.clear()

    def mon(self, prefix: str, inbuf: bytes = b"", *, binary_output: bool = False,
            **args: Any) -> Any:
        future: Future = Future()
        with self._lock:
            self.commands_sent += 1
            ident = self.commands_sent
            self._waiting[ident] = future
            request = {"id": ident, "prefix": prefix, "args": args, "binary": binary_output,
                       "inbuf": base64.b64encode(inbuf).decode()}
            self._proc.stdin.write(json.dumps(request) + "\n")
            self._proc.stdin.flush()
        result = future.result()
        return base64.b64decode(result) if binary_output else result

    def concurrently(self, calls: Sequence[Callable[[], Any]]) -> list[Any]:
        if len(calls) <= 1:
            return [c() for c in calls]
        with ThreadPoolExecutor(max_workers=len(calls)) as pool:
            futures = [pool.submit(c) for c in calls]
        failed = [f.exception() for f in futures if f.exception() is not None]
        if failed:
            raise failed[0]
        return [f.result() for f in futures]

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.stdin.close()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()

    def __enter__(self) -> RootConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _error(data: dict) -> errors.CephstackError:
    """The typed error the helper reported, rebuilt on this side."""
    cls = getattr(errors, data.get("type", ""), None)
    if not (isinstance(cls, type) and issubclass(cls, errors.CephstackError)):
        cls = errors.CephstackError
    if issubclass(cls, errors.CephCommandError):
        error = cls(data.get("prefix", ""), data.get("errno", 0), data.get("ceph_message", ""),
                    data.get("hint"))
    else:
        error = cls(data.get("message", ""), data.get("hint"))
    return error


def _as_data(e: Exception) -> dict:
    if isinstance(e, errors.CephCommandError):
        return {"type": type(e).__name__, "prefix": e.prefix, "errno": e.errno,
                "ceph_message": e.ceph_message, "hint": e.hint}
    if isinstance(e, errors.CephstackError):
        return {"type": type(e).__name__, "message": e.message, "hint": e.hint}
    return {"type": "CephstackError", "message": f"{type(e).__name__}: {e}"}


def serve(conf: str, keyring: str, timeout: float) -> None:
    """The helper's side, in the root: answer requests from stdin until it closes."""
    from cephstack.ceph.adapter import CephConnection, ClusterAccess

    out_lock = threading.Lock()

    def send(answer: dict) -> None:
        with out_lock:
            sys.stdout.write(json.dumps(answer) + "\n")
            sys.stdout.flush()

    try:
        conn = CephConnection(ClusterAccess(conf, keyring, "client.admin", timeout))
    except Exception as e:  # reported to the caller, who raises it
        send({"id": 0, "error": _as_data(e)})
        return
    send({"id": 0, "ready": True})

    def answer(request: dict) -> None:
        try:
            result = conn.mon(request["prefix"], base64.b64decode(request["inbuf"]),
                              binary_output=request["binary"], **request["args"])
            if request["binary"]:
                result = base64.b64encode(result).decode()
            send({"id": request["id"], "result": result})
        except Exception as e:
            send({"id": request["id"], "error": _as_data(e)})

    with ThreadPoolExecutor(max_workers=64) as pool:
        for line in sys.stdin:
            pool.submit(answer, json.loads(line))
    conn.close()


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2], float(sys.argv[3]))
