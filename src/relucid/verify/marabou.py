"""Marabou (Katz et al., CAV 2019; Wu et al., CAV 2024) as a complete verifier backend.

Install with ``pip install 'relucid[marabou]'``; ``maraboupy`` has wheels only for CPython
<= 3.11 on x86-64 Linux and macOS. :func:`marabou_available` says whether it loads.

Encoding (built from the weights, no model file): variables for the inputs ``x`` (bounded by
the box), per hidden layer the pre-activations ``z_k`` and post-activations ``h_k`` tied by
Marabou's ReLU constraint, and the outputs ``y``; every affine layer is a set of equations and
the extra input half-spaces ``A x <= b`` are inequalities. A NAP (minimal-NAP paper, section
2) is imposed as that paper does it, through the bounds of the pre-activation variables: a
fixed-active neuron gets ``z >= 0``, a fixed-inactive one ``z <= 0``; free neurons keep the
plain ReLU.

* NAP query ``(P, c)``: one solve per class ``j != c`` of ``y_c - y_j <= margin``; when all
  are UNSAT, one more solve without output rows tells EMPTY (no input obeys ``P``) from
  VERIFIED.
* VNN-LIB property: one solve per input region and unsafe output term ``C_t y <= d_t``.

Trust. Every SAT answer is *replayed*: Marabou's point is checked with a float64 forward pass
(:meth:`NapQuery.violated_by`, :meth:`VnnProperty.check_counterexample`), as it is, clipped to
the box, and *polished*: the linear piece of the network around the point (its activation
pattern, :func:`~relucid.local_affine`) is a polytope on which one LP finds the point farthest
from every delicate boundary (neuron signs, half-spaces, output rows). Marabou's solutions
sit on such boundaries, often exactly at ``y_c - y_j = margin``, where a float64 replay
hinges on the last bit. A point that passes none of the three makes the answer UNKNOWN,
never FALSIFIED; likewise the non-emptiness witness of a VERIFIED NAP query must obey the
NAP in float64.

UNSAT answers are Marabou's word, and Marabou 2.0.0 is not always right (upstream reports:
Marabou issues #485, #670, #820). On 400 random 3-4-4-3 networks with partial NAPs, it
answered UNSAT for one query although the output violated the margin by 3e-3 on most of the
NAP region, and for six whose violations were only 1e-4 deep. So before answering VERIFIED,
a cheap *cross-check* looks for what Marabou missed: for NAP queries, the query decided
exactly on the linear piece of the non-emptiness witness (one LP per class); for both kinds,
float64 samples of the region (and around the witness). What it finds is replayed like any
counterexample and reported as FALSIFIED, with a reason saying Marabou had answered UNSAT
(``stats["marabou_missed"] = 1``). It caught the first case and three of the six others;
violations shallower than about 1e-4 can still be missed.

Time. Each solve runs in a worker process (:mod:`relucid.verify._marabou_worker`), started
once and reused; the parent kills it when the call's time is up (Marabou overshoots its own
limit, and holds the GIL while it solves) and starts a fresh one on the next solve. The time
limit of a call is shared by all its solves and includes starting a worker.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from relucid.errors import EmptyPolytopeError, InputError, SolverError
from relucid.lp import LinearProgram, LPStatus
from relucid.network import ReluNetwork
from relucid.pattern import local_affine
from relucid.polytope import bounding_box
from relucid.verify._marabou_worker import OutOfTime, WorkerProcess
from relucid.verify.query import NapQuery, Status, VerifyResult
from relucid.verify.vnnlib import InputRegion, VnnProperty

FloatArray = NDArray[np.float64]

#: Largest distance (in input units) the polishing LP pushes a point from its boundaries.
_POLISH_CAP = 1.0
#: Float64 samples per region (and per scale around a witness) in the cross-check.
_SAMPLES = 512
#: Scales, relative to the box's widths, of the samples drawn around a witness.
_SCALES = (1e-3, 1e-2, 1e-1)
_MISSED = "Marabou answered UNSAT, but the cross-check found this replayed counterexample"


@functools.lru_cache(maxsize=1)
def marabou_available() -> bool:
    """Whether ``maraboupy`` (its compiled ``MarabouCore``) can be imported here."""
    try:
        from maraboupy import MarabouCore  # noqa: F401
    except Exception:  # ImportError, or an OSError from a wheel built for another platform
        return False
    return True


class MarabouVerifier:
    """Decide NAP queries and VNN-LIB properties with Marabou (see the module notes).

    The verifier owns a worker process, started on the first solve; :meth:`close` (or a
    ``with`` block) ends it, and so does garbage collection or the end of the interpreter.
    Calls from several threads are serialised.

    Raises
    ------
    SolverError
        If ``maraboupy`` is not installed (or does not load on this platform).
    """

    name = "marabou"

    def __init__(self) -> None:
        if not marabou_available():
            raise SolverError(
                "the Marabou backend needs maraboupy: pip install 'relucid[marabou]' "
                "(wheels exist only for CPython <= 3.11 on x86-64)"
            )
        self._worker = WorkerProcess()
        self._lock = threading.Lock()

    # -- the verbs -------------------------------------------------------------------------
    def verify_nap(
        self, net: ReluNetwork, query: NapQuery, timeout: float | None = None
    ) -> VerifyResult:
        """Decide whether every domain input obeying ``query.nap`` is classified ``c``.

        Parameters
        ----------
        net : the network.
        query : the NAP query (box, half-spaces ``A x <= b``, margin).
        timeout : seconds for the whole call (None: no limit); UNKNOWN ("timeout") after it.

        Returns
        -------
        VerifyResult
            FALSIFIED with a replayed input and ``violated = j``; VERIFIED; EMPTY; or UNKNOWN
            with the reason. ``stats["solves"]`` counts Marabou solves.

        Raises
        ------
        InputError
            If the query does not fit ``net`` or ``timeout`` is negative.
        SolverError
            If the worker process cannot load maraboupy.
        """
        query.check(net)
        with self._lock:
            run = _Run(self._worker, net, timeout)
            try:
                return self._nap(run, net, query)
            except OutOfTime:
                return run.result(Status.UNKNOWN, "timeout")

    def verify_property(
        self, net: ReluNetwork, prop: VnnProperty, timeout: float | None = None
    ) -> VerifyResult:
        """Decide a VNN-LIB property: VERIFIED = holds, FALSIFIED = violated.

        A counterexample is an ``x`` in some input region with ``C_t f(x) <= d_t`` for some
        term ``t`` (``violated = t``). No input regions: EMPTY. Regions must be bounded (by
        their box or their half-spaces), since Marabou refuses unbounded variables; an
        unbounded one makes the answer UNKNOWN unless another region is violated.
        """
        if net.input_dim != prop.num_inputs or net.output_dim != prop.num_outputs:
            raise InputError(
                f"{net!r} has {net.input_dim} inputs and {net.output_dim} outputs; the "
                f"property speaks of {prop.num_inputs} and {prop.num_outputs}"
            )
        with self._lock:
            run = _Run(self._worker, net, timeout)
            try:
                return self._property(run, net, prop)
            except OutOfTime:
                return run.result(Status.UNKNOWN, "timeout")

    def close(self) -> None:
        """End the worker process (a later call starts a new one)."""
        with self._lock:
            self._worker.stop()

    def __enter__(self) -> MarabouVerifier:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- the procedures --------------------------------------------------------------------
    def _nap(self, run: _Run, net: ReluNetwork, query: NapQuery) -> VerifyResult:
        base = _Problem(query.box.lo, query.box.hi, query.A, query.b, query.nap)
        terms = query.terms(net.output_dim)
        trouble = ""
        for j, row, d in terms:
            problem = base.with_output(row[None, :], np.array([d]))
            answer = run.solve(problem)
            if answer.code == "unsat":
                continue
            if answer.code == "sat" and answer.x is not None:
                x = run.replay(answer.x, problem, lambda v: query.violated_by(net, v))
                if x is not None:
                    return run.result(Status.FALSIFIED, "marabou", x, violated=j)
                trouble = trouble or (
                    f"Marabou's counterexample for class {j} failed the float64 replay"
                )
            else:
                trouble = trouble or f"Marabou answered {answer.describe()} for class {j}"
        if trouble:
            return run.result(Status.UNKNOWN, trouble)
        answer = run.solve(base)
        if answer.code == "unsat":
            if query.hints is not None and query.obeys(net, query.hints).any():
                # Seen on the WBC network: Marabou called a NAP empty that 199 training
                # inputs obey. Its UNSAT answers cannot be trusted here either.
                return run.result(
                    Status.UNKNOWN,
                    "Marabou answered that no input obeys the NAP, but a given input does "
                    "(a forward pass shows it): Marabou is wrong on this query",
                )
            return run.result(Status.EMPTY, "marabou: no domain input obeys the NAP")
        if answer.code != "sat" or answer.x is None:
            return run.result(
                Status.UNKNOWN, f"no violation, but the emptiness solve gave {answer.describe()}"
            )
        witness = run.replay(answer.x, base, lambda v: bool(query.obeys(net, v)))
        if witness is None:
            return run.result(
                Status.UNKNOWN,
                "no violation, but Marabou's witness that the NAP is non-empty failed the "
                "float64 replay",
            )
        if run.out_of_time():  # no time left for the cross-check; Marabou's word stands
            return run.result(Status.VERIFIED, "marabou")
        found = _piece_counterexample(net, query, base, witness)
        if found is not None:
            run.missed = 1
            return run.result(Status.FALSIFIED, _MISSED, found[0], violated=found[1])
        xs = _samples(base.lo, base.hi, witness)
        bad = np.flatnonzero(query.obeys(net, xs) & query.misclassified(net.forward(xs)))
        if bad.size:
            x = xs[bad[0]]
            y = net.forward(x)
            gaps = [(y[query.label] - y[j], j) for j, _, _ in terms]
            run.missed = 1
            return run.result(Status.FALSIFIED, _MISSED, x, violated=min(gaps)[1])
        return run.result(Status.VERIFIED, "marabou")

    def _property(self, run: _Run, net: ReluNetwork, prop: VnnProperty) -> VerifyResult:
        if not prop.inputs:
            return run.result(Status.EMPTY, "the input set is empty")
        free = np.full(net.num_hidden, -1, dtype=np.int8)
        trouble = ""
        boxes: list[tuple[FloatArray, FloatArray]] = []
        for r, region in enumerate(prop.inputs):
            try:
                box = _finite_box(region)
            except _Unbounded as exc:
                trouble = trouble or f"input region {r}: {exc}"
                continue
            if box is None:  # the region is empty
                continue
            boxes.append(box)
            base = _Problem(box[0], box[1], region.A, region.b, free)
            for t, (c_mat, d_vec) in enumerate(prop.output):
                problem = base.with_output(c_mat, d_vec)
                answer = run.solve(problem)
                if answer.code == "unsat":
                    continue
                if answer.code == "sat" and answer.x is not None:
                    x = run.replay(
                        answer.x,
                        problem,
                        lambda v: prop.check_counterexample(net, v),
                        clip=(region.box.lo, region.box.hi),
                    )
                    if x is not None:
                        return run.result(Status.FALSIFIED, "marabou", x, violated=t)
                    trouble = trouble or (
                        f"Marabou's counterexample (region {r}, term {t}) failed the float64 replay"
                    )
                else:
                    trouble = trouble or (
                        f"Marabou answered {answer.describe()} (region {r}, term {t})"
                    )
        if trouble:
            return run.result(Status.UNKNOWN, trouble)
        for lo, hi in [] if run.out_of_time() else boxes:  # the cross-check
            xs = _samples(lo, hi)
            ys = net.forward(xs)
            bad = np.flatnonzero(prop.contains_input(xs) & prop.unsafe(ys))
            if bad.size and prop.check_counterexample(net, xs[bad[0]]):
                y = ys[bad[0]]
                t = next(t for t, (c, d) in enumerate(prop.output) if np.all(c @ y <= d))
                run.missed = 1
                return run.result(Status.FALSIFIED, _MISSED, xs[bad[0]], violated=t)
        return run.result(Status.VERIFIED, "marabou")


# -- one problem, one answer -------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class _Problem:
    """``lo <= x <= hi``, ``A x <= b``, the NAP, and output rows ``C y <= d`` (maybe none)."""

    lo: FloatArray
    hi: FloatArray
    A: FloatArray
    b: FloatArray
    nap: NDArray[np.int8]
    C: FloatArray | None = None
    d: FloatArray | None = None

    def with_output(self, C: ArrayLike, d: ArrayLike) -> _Problem:
        c_arr = np.asarray(C, dtype=np.float64)
        return _Problem(
            self.lo, self.hi, self.A, self.b, self.nap, c_arr, np.asarray(d, np.float64)
        )

    def request(self, seconds: int) -> dict[str, Any]:
        c_arr = np.zeros((0, 0)) if self.C is None else self.C
        d_arr = np.zeros(0) if self.d is None else self.d
        return {
            "lo": self.lo.tolist(),
            "hi": self.hi.tolist(),
            "A": self.A.tolist(),
            "b": self.b.tolist(),
            "nap": self.nap.tolist(),
            "C": c_arr.tolist(),
            "d": d_arr.tolist(),
            "timeout": seconds,
        }


@dataclass(frozen=True)
class _Answer:
    """Marabou's exit code (``sat``, ``unsat``, ``TIMEOUT``, ``ERROR``, ``UNKNOWN``, ...) and
    the input values of a SAT answer; ``detail`` explains a worker failure."""

    code: str
    x: FloatArray | None = None
    detail: str = ""

    def describe(self) -> str:
        return f"{self.code!r}" + (f" ({self.detail})" if self.detail else "")


class _Unbounded(Exception):
    """An input region that Marabou cannot take (unbounded)."""


class _Run:
    """One verifier call: the clock, the counters, and the network sent to the worker."""

    def __init__(self, worker: WorkerProcess, net: ReluNetwork, timeout: float | None) -> None:
        if timeout is not None and not timeout >= 0:
            raise InputError(f"timeout must be a non-negative number of seconds, got {timeout}")
        self.start = time.perf_counter()
        self.deadline = None if timeout is None else self.start + timeout
        self.worker = worker
        self.net = net
        self.key = net.fingerprint()
        self.solves = 0
        self.polishes = 0
        self.missed = 0
        self.marabou_seconds = 0.0
        self.worker_seconds = 0.0
        self.starts_before = worker.starts

    def solve(self, problem: _Problem) -> _Answer:
        """One Marabou solve; raises :class:`OutOfTime` when the call's time is up."""
        left = None if self.deadline is None else self.deadline - time.perf_counter()
        if left is not None and left <= 0:
            raise OutOfTime
        # Marabou's own limit is whole seconds (0 = none); the kill at the deadline is the
        # real limit, this one only stops a solve that outlives a killed parent.
        request = problem.request(0 if left is None else max(1, math.ceil(left)))
        t0 = time.perf_counter()
        self.solves += 1
        try:
            reply = self.worker.call(self.key, self._payload, request, self.deadline)
        except RuntimeError as exc:
            raise SolverError(f"the Marabou worker did not start: {exc}") from exc
        finally:
            self.worker_seconds += time.perf_counter() - t0
        if not reply.get("ok"):
            return _Answer("ERROR", detail=str(reply.get("error", "worker failure")))
        self.marabou_seconds += float(reply.get("seconds", 0.0))
        code = str(reply["code"])
        if code == "TIMEOUT":
            raise OutOfTime
        x = None if reply.get("x") is None else np.asarray(reply["x"], dtype=np.float64)
        return _Answer(code, x)

    def out_of_time(self) -> bool:
        return self.deadline is not None and time.perf_counter() >= self.deadline

    def _payload(self) -> tuple[list[Any], list[Any]]:
        return (
            [w.tolist() for w in self.net.weights],
            [b.tolist() for b in self.net.biases],
        )

    def replay(
        self,
        x: FloatArray,
        problem: _Problem,
        passes: Callable[[FloatArray], bool],
        clip: tuple[FloatArray, FloatArray] | None = None,
    ) -> FloatArray | None:
        """The first of Marabou's ``x``, ``x`` clipped to the box (``clip``, default the
        problem's) and the polished point that passes the float64 check; None if none does."""
        if x.shape != (self.net.input_dim,) or not np.isfinite(x).all():
            return None
        lo, hi = clip if clip is not None else (problem.lo, problem.hi)
        clipped = np.clip(x, lo, hi)
        for cand in (x, clipped):
            if passes(cand):
                return cand
        self.polishes += 1
        polished = _polish(self.net, clipped, problem)
        if polished is not None and passes(polished):
            return polished
        return None

    def result(
        self,
        status: Status,
        reason: str,
        x: FloatArray | None = None,
        violated: int | None = None,
    ) -> VerifyResult:
        return VerifyResult(
            status,
            backend=MarabouVerifier.name,
            seconds=time.perf_counter() - self.start,
            reason=reason,
            counterexample=x,
            violated=violated,
            stats={
                "solves": self.solves,
                "marabou_seconds": self.marabou_seconds,
                "worker_seconds": self.worker_seconds,
                "worker_starts": self.worker.starts - self.starts_before,
                "polishes": self.polishes,
                "marabou_missed": self.missed,
            },
        )


# -- replay and cross-check helpers ----------------------------------------------------------
def _pattern(net: ReluNetwork, x: FloatArray, nap: NDArray[np.int8]) -> NDArray[np.bool_]:
    """The activation pattern of ``x`` (``z > 0``), with the NAP's fixed neurons on their side."""
    z = np.concatenate(net.pre_activations(x), axis=-1)[0]
    return np.asarray(np.where(nap >= 0, nap == 1, z > 0))


def _piece_rows(
    net: ReluNetwork, pattern: NDArray[np.bool_], problem: _Problem
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """``(G, g, L, e)``: the piece of ``pattern`` cut by ``A x <= b`` is ``G x <= g``, and
    ``y = L x + e`` on it (rows ``s_i z_i(x) <= 0``, ``s_i = -1`` active, ``+1`` inactive)."""
    aff = local_affine(net, pattern)
    sign = np.where(pattern, -1.0, 1.0)
    g_mat = np.vstack([sign[:, None] * aff.M, problem.A])
    g_vec = np.concatenate([-sign * aff.c, problem.b])
    return g_mat, g_vec, aff.L, aff.d


def _polish(
    net: ReluNetwork,
    x: FloatArray,
    problem: _Problem,
    pattern: NDArray[np.bool_] | None = None,
) -> FloatArray | None:
    """The point of the box farthest (up to ``_POLISH_CAP``) from the boundaries of
    ``x``'s linear piece, of ``A x <= b`` and of the output rows; None if there is none.

    The piece is that of ``pattern`` (default: :func:`_pattern` of ``x``); on it
    ``y = L x + e``. Its rows, ``A x <= b`` and ``C (L x + e) <= d`` are scaled to unit norm
    and must hold with slack ``t >= 0``; the LP maximises ``t``. With ``t > 0`` the replay no
    longer hinges on rounding; a set without interior gives ``t = 0`` and a point on its
    boundary; an empty one, None.
    """
    if pattern is None:
        pattern = _pattern(net, x, problem.nap)
    g_mat, g_vec, l_mat, e_vec = _piece_rows(net, pattern, problem)
    if problem.C is not None and problem.d is not None and problem.C.size:
        g_mat = np.vstack([g_mat, problem.C @ l_mat])
        g_vec = np.concatenate([g_vec, problem.d - problem.C @ e_vec])
    norms = np.linalg.norm(g_mat, axis=1)
    flat = norms == 0
    if (g_vec[flat] < 0).any():  # a constant row that fails: the piece misses the set
        return None
    g_mat, g_vec, norms = g_mat[~flat], g_vec[~flat], norms[~flat]
    n = net.input_dim
    rows = np.hstack([g_mat / norms[:, None], np.ones((g_mat.shape[0], 1))])
    try:
        lp = LinearProgram(
            rows,
            g_vec / norms,
            col_lo=np.append(problem.lo, 0.0),
            col_hi=np.append(problem.hi, _POLISH_CAP),
        )
        res = lp.maximize(np.append(np.zeros(n), 1.0))
    except SolverError:
        return None
    if res.status is not LPStatus.OPTIMAL or res.x is None:
        return None
    return np.clip(res.x[:n], problem.lo, problem.hi)


def _piece_counterexample(
    net: ReluNetwork, query: NapQuery, base: _Problem, witness: FloatArray
) -> tuple[FloatArray, int] | None:
    """Exactly decide the query on the witness's linear piece: one LP model, minimising
    ``y_c - y_j`` for each ``j`` in turn; a violating minimiser is polished and replayed.
    Returns ``(x, j)`` or None."""
    pattern = _pattern(net, witness, base.nap)
    g_mat, g_vec, l_mat, e_vec = _piece_rows(net, pattern, base)
    try:
        lp = LinearProgram(g_mat, g_vec, col_lo=base.lo, col_hi=base.hi)
        for j, row, d in query.terms(net.output_dim):
            res = lp.minimize(row @ l_mat)
            if res.status is not LPStatus.OPTIMAL or res.x is None or res.objective is None:
                return None  # the piece is empty (the witness sits on its boundary)
            if res.objective + row @ e_vec > d + 1e-9 * (1.0 + abs(d)):
                continue
            problem = base.with_output(row[None, :], np.array([d]))
            for cand in (res.x, _polish(net, res.x, problem, pattern)):
                if cand is not None and query.violated_by(net, cand):
                    return cand, j
    except SolverError:
        return None
    return None


def _samples(lo: FloatArray, hi: FloatArray, around: FloatArray | None = None) -> FloatArray:
    """Uniform samples of the box, plus Gaussian ones around ``around`` at a few scales,
    clipped to the box (fixed seed: the cross-check is repeatable)."""
    rng = np.random.default_rng(0)
    parts = [rng.uniform(lo, hi, size=(_SAMPLES, lo.size))]
    if around is not None:
        width = hi - lo
        for scale in _SCALES:
            step = rng.normal(size=(_SAMPLES, lo.size)) * (scale * width)
            parts.append(np.clip(around + step, lo, hi))
    return np.vstack(parts)


def _finite_box(region: InputRegion) -> tuple[FloatArray, FloatArray] | None:
    """Finite bounds for ``region`` (its box, or the bounding box of its polytope, widened by
    1e-7 relative since the region's own rows go to Marabou too); None if it is empty."""
    lo, hi = region.box.lo, region.box.hi
    if np.isfinite(lo).all() and np.isfinite(hi).all():
        return lo, hi
    eye = np.eye(lo.size)
    up, down = np.isfinite(hi), np.isfinite(lo)
    rows = np.vstack([region.A, eye[up], -eye[down]])
    rhs = np.concatenate([region.b, hi[up], -lo[down]])
    try:
        blo, bhi = bounding_box(rows, rhs)
    except EmptyPolytopeError:
        return None
    open_sides = np.flatnonzero(~(np.isfinite(blo) & np.isfinite(bhi)))
    if open_sides.size:
        raise _Unbounded(f"unbounded in X_{int(open_sides[0])}; Marabou needs bounded inputs")
    pad = 1e-7 * (1.0 + np.maximum(np.abs(blo), np.abs(bhi)))
    return np.maximum(lo, blo - pad), np.minimum(hi, bhi + pad)
