"""Both ends of the pipe to the process that runs Marabou for :mod:`relucid.verify.marabou`.

The worker runs this file as a script (``python -P _marabou_worker.py PARENT_PID``), not
through the package, so that it loads only the standard library and
``maraboupy.MarabouCore``: importing relucid costs about two seconds, this process starts in
about 30 ms. The parent (:class:`WorkerProcess`) kills it when a time limit is up, since
Marabou overshoots its own timeout and holds the GIL while it solves, so nothing inside the
worker could interrupt it. This module imports nothing from relucid.

Protocol: length-prefixed pickles (an 8-byte big-endian length, then the bytes). Requests
come on the worker's stdin, replies go out on its original stdout; file descriptors 1 and 2
are then pointed at ``/dev/null`` so that Marabou's C++ prints go nowhere. The first reply is
a handshake, ``{"ok": True}`` or ``{"ok": False, "error": ...}``. Each request is a dict:

* ``"net"`` (optional): ``(weights, biases)`` as nested lists, ``W_k`` of shape
  (n_{k+1}, n_k); kept by the worker for later requests that omit it;
* ``"lo"``, ``"hi"``: finite input bounds; ``"A"``, ``"b"``: input half-spaces ``A x <= b``;
* ``"nap"``: one int per hidden neuron (1 active: pre-activation ``z >= 0``; 0 inactive:
  ``z <= 0``; -1 free), imposed as bounds on the pre-activation variables;
* ``"C"``, ``"d"``: output rows ``C y <= d`` (none: no output constraint);
* ``"timeout"``: Marabou's own limit in whole seconds (0: none).

The reply is ``{"ok": True, "code": "sat" | "unsat" | "TIMEOUT" | "ERROR" | ..., "x": [...]
| None, "y": [...] | None, "seconds": float, "splits": int}`` or ``{"ok": False, "error":
message}``.

Variables of the Marabou query, in order: the inputs ``x``, then per hidden layer the
pre-activations ``z_k`` and the post-activations ``h_k = relu(z_k)``, then the outputs ``y``.
"""

from __future__ import annotations

import os
import pickle
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

_HEADER = struct.Struct(">Q")


class OutOfTime(Exception):
    """The caller's deadline passed while waiting for the worker."""


# -- the parent's side ------------------------------------------------------------------------
class WorkerProcess:
    """A lazily started worker, reused across solves and restarted after a kill.

    ``call`` sends the network only when the worker does not hold it yet (keyed by the
    caller, e.g. by the network's fingerprint).
    """

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._reaper: weakref.finalize[Any, Any] | None = None
        self._held: str | None = None
        self._payload: tuple[str, Any] | None = None
        self.starts = 0

    def call(
        self,
        key: str,
        payload: Callable[[], Any],
        request: dict[str, Any],
        deadline: float | None,
    ) -> dict[str, Any]:
        """Send ``request`` (with the network ``payload()`` if the worker lacks ``key``) and
        wait for the reply until ``deadline`` (``time.perf_counter`` time; None: forever).

        Raises :class:`OutOfTime` after the deadline, having killed the worker. A worker
        that dies or answers garbage gives ``{"ok": False, "error": ...}``; one that cannot
        start (no maraboupy in its interpreter) raises :class:`RuntimeError`.
        """
        try:
            if self._proc is None or self._proc.poll() is not None:
                self._start(deadline)
            if self._held != key:
                if self._payload is None or self._payload[0] != key:
                    self._payload = (key, payload())
                request = {**request, "net": self._payload[1]}
            self._send(request)
            self._held = key
            return self._receive(deadline)
        except OutOfTime:
            self.stop()
            raise
        except (OSError, EOFError, pickle.UnpicklingError) as exc:
            code = None if self._proc is None else self._proc.poll()
            self.stop()
            return {"ok": False, "error": f"the Marabou worker died ({exc}; exit code {code})"}
        except BaseException:
            self.stop()  # e.g. KeyboardInterrupt: never leave a solve running
            raise

    def stop(self) -> None:
        """Kill the worker, if any (the next call starts a new one)."""
        if self._reaper is not None:
            self._reaper()
        self._proc = None
        self._reaper = None
        self._held = None

    def _start(self, deadline: float | None) -> None:
        self.stop()
        # -P keeps this file's folder off sys.path (its modules would shadow nothing today,
        # but the worker must not depend on that).
        flags = ["-P"] if sys.version_info >= (3, 11) else []
        # Marabou writes files such as failedMarabouQuery.ipq into its working directory:
        # give it a private one, removed with the worker.
        folder = tempfile.mkdtemp(prefix="relucid-marabou-")
        env = dict(os.environ)
        if env.get("PYTHONPATH"):
            parts = env["PYTHONPATH"].split(os.pathsep)
            env["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p) for p in parts if p)
        try:
            proc = subprocess.Popen(
                [sys.executable, *flags, str(Path(__file__).resolve()), str(os.getpid())],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                cwd=folder,
                env=env,
            )
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        self._proc = proc
        self._reaper = weakref.finalize(self, _reap, proc, folder)
        self.starts += 1
        hello = self._receive(deadline)
        if not hello.get("ok"):
            self.stop()
            raise RuntimeError(str(hello.get("error")))

    def _send(self, obj: Any) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        body = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        self._proc.stdin.write(_HEADER.pack(len(body)) + body)
        self._proc.stdin.flush()

    def _receive(self, deadline: float | None) -> dict[str, Any]:
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        (size,) = _HEADER.unpack(_read_exact(fd, _HEADER.size, deadline))
        reply = pickle.loads(_read_exact(fd, size, deadline))
        if not isinstance(reply, dict):
            raise EOFError("malformed reply")
        return reply


def _read_exact(fd: int, size: int, deadline: float | None) -> bytes:
    """``size`` bytes from a pipe, waiting at most until ``deadline``."""
    chunks: list[bytes] = []
    need = size
    while need:
        wait = None if deadline is None else deadline - time.perf_counter()
        if wait is not None and wait <= 0:
            raise OutOfTime
        ready, _, _ = select.select([fd], [], [], wait)
        if not ready:
            raise OutOfTime
        chunk = os.read(fd, min(need, 1 << 20))
        if not chunk:
            raise EOFError("the worker closed its pipe")
        chunks.append(chunk)
        need -= len(chunk)
    return b"".join(chunks)


def _reap(proc: subprocess.Popen[bytes], folder: str) -> None:
    """Kill and wait for a worker, closing its pipes and removing its folder."""
    if proc.poll() is None:
        proc.kill()
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            try:
                stream.close()
            except OSError:
                pass
    proc.wait()
    shutil.rmtree(folder, ignore_errors=True)


# -- the worker's side ------------------------------------------------------------------------
def read_message(stream: IO[bytes]) -> Any:
    """One framed pickle from ``stream``; EOFError when the stream ends."""
    head = stream.read(_HEADER.size)
    if len(head) < _HEADER.size:
        raise EOFError
    (size,) = _HEADER.unpack(head)
    body = stream.read(size)
    if len(body) < size:
        raise EOFError
    return pickle.loads(body)


def write_message(stream: IO[bytes], obj: Any) -> None:
    body = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(body)) + body)
    stream.flush()


class Infeasible(Exception):
    """A request with a constant constraint that fails (``0 <= d`` with ``d < 0``)."""


def build_query(core: Any, net: tuple[list[Any], list[Any]], req: dict[str, Any]) -> Any:
    """The Marabou ``InputQuery`` of one request (see the module notes)."""
    weights, biases = net
    n = len(weights[0][0])
    sizes = [len(w) for w in weights]
    hidden, m = sizes[:-1], sizes[-1]
    ipq = core.InputQuery()
    ipq.setNumberOfVariables(n + 2 * sum(hidden) + m)
    eq_type, le_type = core.Equation.EQ, core.Equation.LE

    def add_row(kind: Any, coefs: list[float], variables: list[int], scalar: float) -> None:
        """Add ``sum coefs * variables (= or <=) scalar``, leaving out zero coefficients
        (Marabou rejects them in some constraints). An all-zero row is dropped when it holds
        and raises :class:`Infeasible` when it does not."""
        eq = core.Equation(kind)
        nonzero = False
        for c, v in zip(coefs, variables, strict=True):
            if c != 0.0:
                eq.addAddend(float(c), v)
                nonzero = True
        if nonzero:
            eq.setScalar(float(scalar))
            ipq.addEquation(eq)
        elif (kind == le_type and scalar < 0) or (kind == eq_type and scalar != 0):
            raise Infeasible

    xs = list(range(n))
    for i in xs:
        ipq.markInputVariable(i, i)
        ipq.setLowerBound(i, float(req["lo"][i]))
        ipq.setUpperBound(i, float(req["hi"][i]))
    for row, rhs in zip(req["A"], req["b"], strict=True):
        add_row(le_type, row, xs, rhs)

    nap = req["nap"]
    prev, nxt, flat = xs, n, 0
    for k, size in enumerate(hidden):
        zs = list(range(nxt, nxt + size))
        hs = list(range(nxt + size, nxt + 2 * size))
        nxt += 2 * size
        for i in range(size):
            # z_i - W_i h_prev = b_i
            add_row(eq_type, [1.0] + [-c for c in weights[k][i]], [zs[i], *prev], biases[k][i])
            core.addReluConstraint(ipq, zs[i], hs[i])
            ipq.setLowerBound(hs[i], 0.0)
            # The minimal-NAP paper's way to fix a phase: a bound on the pre-activation.
            # (Replacing fixed ReLUs by linear equations made Marabou 2.0.0 less reliable.)
            if nap[flat] == 1:
                ipq.setLowerBound(zs[i], 0.0)
            elif nap[flat] == 0:
                ipq.setUpperBound(zs[i], 0.0)
            flat += 1
        prev = hs
    ys = list(range(nxt, nxt + m))
    for j in range(m):
        ipq.markOutputVariable(ys[j], j)
        add_row(eq_type, [1.0] + [-c for c in weights[-1][j]], [ys[j], *prev], biases[-1][j])
    for row, rhs in zip(req["C"], req["d"], strict=True):
        add_row(le_type, row, ys, rhs)
    return ipq


def solve(core: Any, net: tuple[list[Any], list[Any]], req: dict[str, Any]) -> dict[str, Any]:
    """Build and solve one request; the reply dict of the module notes."""
    start = time.perf_counter()
    try:
        ipq = build_query(core, net, req)
    except Infeasible:
        seconds = time.perf_counter() - start
        return {"ok": True, "code": "unsat", "x": None, "y": None, "seconds": seconds, "splits": 0}
    opts = core.Options()
    opts._verbosity = 0
    opts._timeoutInSeconds = int(req["timeout"])
    opts._numWorkers = 1
    opts._snc = False
    code, vals, stats = core.solve(ipq, opts, "")
    weights = net[0]
    n, m = len(weights[0][0]), len(weights[-1])
    first_y = n + 2 * sum(len(w) for w in weights[:-1])
    x = y = None
    if code == "sat":
        # The solution dict maps variable numbers to values.
        x = [float(vals[i]) for i in range(n)]
        y = [float(vals[i]) for i in range(first_y, first_y + m)]
    try:
        splits = int(stats.getUnsignedAttribute(core.StatisticsUnsignedAttribute.NUM_SPLITS))
    except Exception:  # statistics are a courtesy; an engine that stopped early has none
        splits = -1
    return {
        "ok": True,
        "code": str(code),
        "x": x,
        "y": y,
        "seconds": time.perf_counter() - start,
        "splits": splits,
    }


def _die_with_parent(parent: int) -> None:
    """Ask Linux to kill this process when the parent dies (it may be stuck in a solve)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def main(argv: list[str]) -> int:
    if argv:
        _die_with_parent(int(argv[0]))
    # The parent handles Ctrl-C and kills this process; a KeyboardInterrupt here would only
    # print a traceback into the parent's terminal.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    requests = sys.stdin.buffer
    replies = os.fdopen(os.dup(1), "wb")
    try:
        from maraboupy import MarabouCore as core
    except Exception as exc:  # ImportError, or an OSError from a wheel for another platform
        write_message(replies, {"ok": False, "error": f"cannot import maraboupy: {exc}"})
        return 1
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    write_message(replies, {"ok": True})
    net: tuple[list[Any], list[Any]] | None = None
    while True:
        try:
            req = read_message(requests)
        except EOFError:
            return 0
        try:
            if req.get("net") is not None:
                net = req["net"]
            if net is None:
                raise ValueError("no network was sent")
            reply = solve(core, net, req)
        except Exception as exc:
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        write_message(replies, reply)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
