"""VNN-LIB 1.0 properties: a reader for the subset used by ACAS Xu and mnistfc, and a writer.

A VNN-LIB file declares real variables ``X_0 .. X_{n-1}`` (network inputs) and
``Y_0 .. Y_{m-1}`` (outputs) and asserts a formula. The conjunction of the assertions
describes a *counterexample*: the property is violated iff some input ``x`` satisfying the
input assertions has an output ``y = f(x)`` satisfying the output assertions (VNN-COMP rules,
<https://www.vnnlib.org>). A :class:`VnnProperty` holds that formula normalised:

* the input set, a union of :class:`InputRegion` s, each the polytope
  ``{x : lo <= x <= hi, A x <= b}`` (a :class:`~relucid.Box` plus half-spaces over two or
  more inputs);
* the unsafe output set in disjunctive normal form, ``output[t] = (C_t, d_t)``: the output is
  unsafe iff ``C_t y <= d_t`` holds for some term ``t``.

Supported syntax: ``;`` comments, ``(declare-const X_i Real)`` / ``(declare-const Y_j Real)``,
``(assert F)`` where ``F`` is built from ``and``, ``or``, ``true``, ``false`` and comparisons
``<= >= < > =`` (chains such as ``(<= a b c)`` included) between linear terms: numbers,
declared variables, ``+``, ``-`` (unary or n-ary), ``*`` with at most one non-constant factor
and ``/`` by a constant. Every assertion must speak about inputs only or outputs only.
``check-sat``, ``get-model``, ``set-logic``, ``set-info``, ``set-option`` and ``exit`` are
accepted and ignored. Strict comparisons are read as non-strict (the closure of the set,
which is what a verifier over the reals decides); which rows were strict is recorded.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from relucid.domain import Box
from relucid.errors import InputError, VnnlibError

if TYPE_CHECKING:
    from relucid.network import ReluNetwork

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

#: Default bound on the number of DNF terms of the input part and of the output part.
MAX_DISJUNCTS = 4096


# -- the property ------------------------------------------------------------------------------
def _frozen(a: ArrayLike, dtype: type, shape: tuple[int, ...]) -> NDArray[Any]:
    arr: NDArray[Any] = np.array(a, dtype=dtype).reshape(shape)
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class InputRegion:
    """One disjunct of the input set: ``{x : box.lo <= x <= box.hi, A x <= b}``.

    Parameters
    ----------
    box : the bounds on single inputs (sides may be infinite).
    A, b : arrays (k, n) and (k,), constraints that involve two or more inputs.
    strict_lo, strict_hi : arrays (n,) of bool, whether a side came from ``<`` / ``>``.
    strict_rows : array (k,) of bool, the same for the rows of ``A``.
    """

    box: Box
    A: FloatArray
    b: FloatArray
    strict_lo: BoolArray
    strict_hi: BoolArray
    strict_rows: BoolArray

    def __init__(
        self,
        box: Box,
        A: ArrayLike | None = None,
        b: ArrayLike | None = None,
        strict_lo: ArrayLike | None = None,
        strict_hi: ArrayLike | None = None,
        strict_rows: ArrayLike | None = None,
    ) -> None:
        n = box.dim
        if (box.lo == np.inf).any() or (box.hi == -np.inf).any():
            raise InputError("an input region's box needs lo < +inf and hi > -inf")
        a_arr = np.zeros((0, n)) if A is None else np.asarray(A, dtype=np.float64)
        k = a_arr.shape[0] if a_arr.ndim == 2 else -1
        if a_arr.ndim != 2 or a_arr.shape[1] != n:
            raise InputError(f"input half-spaces have shape {a_arr.shape}, expected (k, {n})")
        b_arr = np.zeros(0) if b is None else np.asarray(b, dtype=np.float64).reshape(-1)
        if b_arr.shape != (k,) or not (np.isfinite(a_arr).all() and np.isfinite(b_arr).all()):
            raise InputError(f"input half-spaces need {k} finite right-hand sides")
        object.__setattr__(self, "box", box)
        object.__setattr__(self, "A", _frozen(a_arr, np.float64, (k, n)))
        object.__setattr__(self, "b", _frozen(b_arr, np.float64, (k,)))
        for name, value, size in (
            ("strict_lo", strict_lo, n),
            ("strict_hi", strict_hi, n),
            ("strict_rows", strict_rows, k),
        ):
            flags = np.zeros(size, dtype=bool) if value is None else value
            object.__setattr__(self, name, _frozen(flags, np.bool_, (size,)))

    def contains(self, x: ArrayLike, tol: float = 0.0) -> BoolArray:
        """Membership of each row of ``x`` (shape (n,) or (B, n)), up to ``tol``."""
        xa = np.asarray(x, dtype=np.float64)
        inside = np.all((xa >= self.box.lo - tol) & (xa <= self.box.hi + tol), axis=-1)
        if self.b.size:
            inside &= np.all(xa @ self.A.T <= self.b + tol, axis=-1)
        return np.asarray(inside)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, InputRegion):
            return NotImplemented
        return all(
            np.array_equal(u, v) for u, v in zip(self._arrays(), other._arrays(), strict=True)
        )

    def _arrays(self) -> tuple[NDArray[Any], ...]:
        return (
            self.box.lo, self.box.hi, self.A, self.b,
            self.strict_lo, self.strict_hi, self.strict_rows,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.box.to_dict(),
            "A": self.A.tolist(),
            "b": self.b.tolist(),
            "strict_lo": self.strict_lo.tolist(),
            "strict_hi": self.strict_hi.tolist(),
            "strict_rows": self.strict_rows.tolist(),
        }


@dataclass(frozen=True, eq=False)
class VnnProperty:
    """A VNN-LIB property: a counterexample is an ``x`` in the input set with ``f(x)`` unsafe.

    Parameters
    ----------
    num_inputs, num_outputs : n and m, the declared ``X_i`` and ``Y_j``.
    inputs : tuple of :class:`InputRegion`; the input set is their union (empty tuple: no
        input qualifies and the property holds vacuously).
    output : tuple of ``(C, d)`` with ``C`` of shape (k_t, m) and ``d`` of shape (k_t,);
        ``y`` is unsafe iff ``C y <= d`` for some term (empty tuple: no output is unsafe;
        a term with k_t = 0: every output is).
    output_strict : tuple of bool arrays (k_t,), which rows came from ``<`` / ``>``.
    source : where the text came from (not compared by ``==``).
    """

    num_inputs: int
    num_outputs: int
    inputs: tuple[InputRegion, ...]
    output: tuple[tuple[FloatArray, FloatArray], ...]
    output_strict: tuple[BoolArray, ...]
    source: str = "<text>"

    def __init__(
        self,
        num_inputs: int,
        num_outputs: int,
        inputs: Sequence[InputRegion],
        output: Sequence[tuple[ArrayLike, ArrayLike]],
        output_strict: Sequence[ArrayLike] | None = None,
        source: str = "<text>",
    ) -> None:
        n, m = int(num_inputs), int(num_outputs)
        if n < 1 or m < 1:
            raise InputError(f"a property needs inputs and outputs, got n={n}, m={m}")
        for r in inputs:
            if r.box.dim != n:
                raise InputError(f"an input region has {r.box.dim} features, expected {n}")
        terms: list[tuple[FloatArray, FloatArray]] = []
        for c, d in output:
            c_arr = np.asarray(c, dtype=np.float64)
            d_arr = np.asarray(d, dtype=np.float64).reshape(-1)
            if c_arr.ndim != 2 or c_arr.shape != (d_arr.size, m):
                raise InputError(f"output term has C {c_arr.shape}, d {d_arr.shape}; m={m}")
            if not (np.isfinite(c_arr).all() and np.isfinite(d_arr).all()):
                raise InputError("output terms must be finite")
            terms.append(
                (_frozen(c_arr, np.float64, c_arr.shape), _frozen(d_arr, np.float64, d_arr.shape))
            )
        if output_strict is None:
            strict = tuple(_frozen(np.zeros(d.size), np.bool_, d.shape) for _, d in terms)
        else:
            if len(output_strict) != len(terms):
                raise InputError("output_strict needs one mask per output term")
            strict = tuple(
                _frozen(s, np.bool_, d.shape)
                for s, (_, d) in zip(output_strict, terms, strict=True)
            )
        object.__setattr__(self, "num_inputs", n)
        object.__setattr__(self, "num_outputs", m)
        object.__setattr__(self, "inputs", tuple(inputs))
        object.__setattr__(self, "output", tuple(terms))
        object.__setattr__(self, "output_strict", strict)
        object.__setattr__(self, "source", str(source))

    # -- views ---------------------------------------------------------------------------
    @property
    def boxes(self) -> tuple[Box, ...]:
        """The box of every input region (the half-spaces, if any, are in ``inputs``)."""
        return tuple(r.box for r in self.inputs)

    @property
    def box(self) -> Box:
        """The input set when it is a single box; :class:`VnnlibError` otherwise."""
        if len(self.inputs) != 1 or self.inputs[0].b.size:
            raise VnnlibError(
                f"{self.source}: the input set is {len(self.inputs)} region(s), not one box"
            )
        return self.inputs[0].box

    @property
    def has_strict(self) -> bool:
        """Whether any comparison was strict (read as non-strict)."""
        flags = [s.any() for s in self.output_strict]
        flags += [
            r.strict_lo.any() or r.strict_hi.any() or r.strict_rows.any() for r in self.inputs
        ]
        return bool(any(flags))

    # -- semantics -----------------------------------------------------------------------
    def unsafe(self, y: ArrayLike, tol: float = 0.0) -> BoolArray:
        """Whether each output row satisfies the counterexample condition ``C_t y <= d_t + tol``.

        ``y`` has shape (m,) or (B, m); the result has shape () or (B,).
        """
        ya = np.asarray(y, dtype=np.float64)
        if ya.shape[-1:] != (self.num_outputs,) or ya.ndim > 2:
            raise InputError(f"outputs have shape {ya.shape}, expected (B, {self.num_outputs})")
        hit = np.zeros(ya.shape[:-1], dtype=bool)
        for c, d in self.output:
            hit |= np.all(ya @ c.T <= d + tol, axis=-1)
        return hit

    def contains_input(self, x: ArrayLike, tol: float = 0.0) -> BoolArray:
        """Whether each row of ``x`` (shape (n,) or (B, n)) lies in the input set."""
        xa = np.asarray(x, dtype=np.float64)
        if xa.shape[-1:] != (self.num_inputs,) or xa.ndim > 2:
            raise InputError(f"inputs have shape {xa.shape}, expected (B, {self.num_inputs})")
        inside = np.zeros(xa.shape[:-1], dtype=bool)
        for r in self.inputs:
            inside |= r.contains(xa, tol)
        return inside

    def check_counterexample(self, net: ReluNetwork, x: ArrayLike, tol: float = 0.0) -> bool:
        """True iff ``x`` is in the input set and the float64 forward pass ``net(x)`` is unsafe.

        This is the replay every reported counterexample must pass; ``tol`` loosens both tests.
        """
        if net.input_dim != self.num_inputs or net.output_dim != self.num_outputs:
            raise InputError(
                f"{net!r} does not fit a property with {self.num_inputs} inputs and "
                f"{self.num_outputs} outputs"
            )
        xa = np.asarray(x, dtype=np.float64)
        if xa.shape != (self.num_inputs,):
            raise InputError(f"a counterexample has shape ({self.num_inputs},), got {xa.shape}")
        y = net.forward(xa)
        return bool(self.contains_input(xa, tol)) and bool(self.unsafe(y, tol))

    # -- output --------------------------------------------------------------------------
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VnnProperty):
            return NotImplemented
        return (
            (self.num_inputs, self.num_outputs) == (other.num_inputs, other.num_outputs)
            and self.inputs == other.inputs
            and len(self.output) == len(other.output)
            and all(
                np.array_equal(c1, c2) and np.array_equal(d1, d2) and np.array_equal(s1, s2)
                for (c1, d1), (c2, d2), s1, s2 in zip(
                    self.output, other.output, self.output_strict, other.output_strict, strict=True
                )
            )
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "num_inputs": self.num_inputs,
            "num_outputs": self.num_outputs,
            "inputs": [r.to_dict() for r in self.inputs],
            "output": [
                {"C": c.tolist(), "d": d.tolist(), "strict": s.tolist()}
                for (c, d), s in zip(self.output, self.output_strict, strict=True)
            ],
        }

    def to_vnnlib(self) -> str:
        """VNN-LIB text that :func:`parse_vnnlib` reads back to an equal property.

        Numbers are written with ``repr`` (exact for float64). Rows over a single variable
        are read back as bounds, so the round trip holds for every parsed property and for
        any property whose half-space rows have two or more non-zero coefficients.
        """
        n, m = self.num_inputs, self.num_outputs
        lines = [f"; written by relucid from {self.source}", ""]
        lines += [f"(declare-const X_{i} Real)" for i in range(n)] + [""]
        lines += [f"(declare-const Y_{j} Real)" for j in range(m)] + [""]
        in_terms = [_region_atoms(r) for r in self.inputs]
        out_terms = [
            [_row_atom(c, dv, s, "Y") for c, dv, s in zip(cm, d, st, strict=True)]
            for (cm, d), st in zip(self.output, self.output_strict, strict=True)
        ]
        lines += [*_assertions(in_terms, "X"), "", *_assertions(out_terms, "Y")]
        return "\n".join(lines) + "\n"


def _num(v: float) -> str:
    return repr(float(v) + 0.0)  # no "-0.0" in the text


def _linear(coef: NDArray[np.float64], name: str) -> str:
    terms = [
        f"{name}_{i}" if c == 1.0 else f"(* {_num(c)} {name}_{i})" for i, c in enumerate(coef) if c
    ]
    return terms[0] if len(terms) == 1 else f"(+ {' '.join(terms)})"


def _row_atom(c: FloatArray, d: float, strict: bool, name: str) -> str:
    """``c . v <= d`` as ``(<= pos (+ neg d))`` so that reading it gives back c and d exactly."""
    lt = "<" if strict else "<="
    if not (c > 0).any():
        # Only negative coefficients: (>= |c|.v -d) reads back as c.v <= d.
        gt = ">" if strict else ">="
        return f"({gt} {_linear(-c, name)} {_num(-d)})"
    pos, neg = np.maximum(c, 0.0), np.maximum(-c, 0.0)
    if not neg.any():
        return f"({lt} {_linear(pos, name)} {_num(d)})"
    rhs = _linear(neg, name) if d == 0.0 else f"(+ {_linear(neg, name)} {_num(d)})"
    return f"({lt} {_linear(pos, name)} {rhs})"


def _region_atoms(r: InputRegion) -> list[str]:
    atoms: list[str] = []
    for i, (lo, hi) in enumerate(zip(r.box.lo, r.box.hi, strict=True)):
        if np.isfinite(hi):
            atoms.append(f"({'<' if r.strict_hi[i] else '<='} X_{i} {_num(hi)})")
        if np.isfinite(lo):
            atoms.append(f"({'>' if r.strict_lo[i] else '>='} X_{i} {_num(lo)})")
    atoms += [_row_atom(a, bv, s, "X") for a, bv, s in zip(r.A, r.b, r.strict_rows, strict=True)]
    return atoms


def _assertions(terms: list[list[str]], name: str) -> list[str]:
    if not terms:
        # An unsatisfiable assertion that still names a variable of the right kind.
        return [f"(assert (<= (* 0.0 {name}_0) -1.0))"]
    if len(terms) == 1:
        return [f"(assert {a})" for a in terms[0]]
    # A term without atoms gets a tautology that names a variable, so that the assertion is
    # read back on the same side (inputs or outputs).
    true = f"(<= (* 0.0 {name}_0) 0.0)"
    body = [f"    (and {' '.join(t or [true])})" for t in terms]
    return ["(assert (or", *body, "))"]


# -- benchmark instances ---------------------------------------------------------------------
@dataclass(frozen=True)
class VnnInstance:
    """One row of a VNN-COMP instances file: network, property, timeout in seconds."""

    network: Path
    property: Path
    timeout: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "network": str(self.network),
            "property": str(self.property),
            "timeout": self.timeout,
        }


def read_instances(csv_path: str | Path) -> list[VnnInstance]:
    """Read an instances CSV (``network,property,timeout`` per row, no header).

    Relative paths are resolved against the CSV file's folder. Blank lines are skipped; a
    malformed row raises :class:`VnnlibError` naming the line.
    """
    path = Path(csv_path)
    folder = path.parent
    out: list[VnnInstance] = []
    with path.open(newline="") as f:
        for line_no, row in enumerate(csv.reader(f), start=1):
            cells = [c.strip() for c in row]
            if not any(cells):
                continue
            try:
                if len(cells) != 3:
                    raise ValueError(f"{len(cells)} fields, expected network,property,timeout")
                timeout = float(cells[2])
                if not timeout > 0 or not math.isfinite(timeout):
                    raise ValueError(f"timeout {cells[2]!r} is not a positive number")
            except ValueError as exc:
                raise VnnlibError(f"{path}:{line_no}: {exc}") from exc
            out.append(VnnInstance(folder / cells[0], folder / cells[1], timeout))
    return out
