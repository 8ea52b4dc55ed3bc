"""``why(x)``: the exact input region on which the network decides as it did at ``x``.

Paper: geometric-causal-explanations-relu, sections I-C (regions of activation patterns),
II-A ("why" explanations: region plus "c beats j" rows, redundancy removed by LPs), II-C
(V-representation) and III.

For input ``x`` with pattern ``p`` and class ``c = argmax f(x)``, the explanation is the
polytope

    Q = { x' in D : pattern constraints of p hold at x',  (L_j - L_c) x' <= d_c - d_j  for j != c }

reduced to its irredundant rows. On ``Q`` the network is the single affine map
``f(x') = L x' + d`` and decides ``c`` everywhere. ``Q`` is shown as its rows (labelled by
origin), its bounding box, its Chebyshev ball and, in dimension <= 6, its vertices.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from relucid.domain import Box, as_box
from relucid.errors import InputError
from relucid.network import ReluNetwork
from relucid.polytope import contains, vertices
from relucid.redundancy import ReductionStats, irredundant_rows
from relucid.region import RowKind, RowOrigin, region

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class ExplainerConfig:
    """Settings of :class:`Explainer`.

    Attributes
    ----------
    vertex_max_dim : enumerate vertices only when the input dimension is at most this.
    redundancy_tol : rows whose removal grows the set by at most this distance are dropped.
    random_state : seed of the ray directions used to certify facets.
    decision : ``"argmax"`` (the usual classifier) or ``"argmin"`` (networks whose smallest
        output is the decision, such as ACAS Xu's advisories); "c beats j" then means
        ``y_c <= y_j``.
    """

    vertex_max_dim: int = 6
    redundancy_tol: float = 1e-7
    random_state: int = 0
    decision: Literal["argmax", "argmin"] = "argmax"


@dataclass(frozen=True, eq=False)
class WhyExplanation:
    """Why the network chose ``predicted`` at ``x``: the region ``A x' <= b`` where it does.

    Attributes
    ----------
    x, logits, predicted : the input, its logits, its arg-max class.
    pattern : bool array (num_hidden,), the activation pattern of ``x``.
    A, b : arrays (k, n), (k,): the irredundant rows of ``Q`` in the network's input units.
    origins : one :class:`RowOrigin` per row.
    lo, hi : bounding box of ``Q`` (2n LPs).
    centre, radius : Chebyshev ball of ``Q``.
    vertices : array (v, n) in dimension <= ``vertex_max_dim``, else ``None``.
    L, d : the affine map ``logits = L x' + d`` that holds on ``Q``.
    rows_before : rows of the unreduced system; ``stats``: how they were decided.
    seconds : wall time of the whole explanation.
    """

    x: FloatArray
    logits: FloatArray
    predicted: int
    pattern: NDArray[np.bool_]
    A: FloatArray
    b: FloatArray
    origins: tuple[RowOrigin, ...]
    lo: FloatArray
    hi: FloatArray
    centre: FloatArray
    radius: float
    vertices: FloatArray | None
    L: FloatArray
    d: FloatArray
    rows_before: int
    stats: ReductionStats
    seconds: float
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...]
    domain: Box | None = field(default=None)

    @property
    def num_rows(self) -> int:
        return int(self.b.size)

    @property
    def predicted_name(self) -> str:
        return self.class_names[self.predicted]

    def contains(self, X: ArrayLike, tol: float = 1e-9) -> NDArray[np.bool_]:
        """Whether points lie in the explained region (scaled rows, tolerance ``tol``)."""
        return contains(self.A, self.b, X, tol)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary of the whole explanation."""

        def fl(a: NDArray[Any]) -> list[Any]:
            return [None if not np.isfinite(v) else float(v) for v in np.ravel(a)]

        return {
            "input": fl(self.x),
            "logits": fl(self.logits),
            "predicted": self.predicted,
            "predicted_name": self.predicted_name,
            "feature_names": list(self.feature_names),
            "class_names": list(self.class_names),
            "pattern": "".join("1" if v else "0" for v in self.pattern),
            "constraints": [
                {
                    "coefficients": fl(self.A[i]),
                    "rhs": float(self.b[i]),
                    "origin": self.origins[i].to_dict(),
                    "text": self.row_text(i, max_terms=None),
                }
                for i in range(self.num_rows)
            ],
            "bounding_box": {"lo": fl(self.lo), "hi": fl(self.hi)},
            "chebyshev": {
                "centre": fl(self.centre),
                "radius": None if not np.isfinite(self.radius) else self.radius,
            },
            "vertices": None if self.vertices is None else [fl(v) for v in self.vertices],
            "local_map": {"L": [fl(r) for r in self.L], "d": fl(self.d)},
            "domain": None if self.domain is None else self.domain.to_dict(),
            "rows_before_reduction": self.rows_before,
            "reduction": self.stats.to_dict(),
            "seconds": self.seconds,
        }

    def row_text(self, i: int, max_terms: int | None = 6, digits: int = 4) -> str:
        """Row ``i`` as ``c1*feature1 + c2*feature2 ... <= rhs`` over named features.

        Rows are scaled so the largest coefficient has magnitude 1. With ``max_terms``, only
        the terms that vary most over the bounding box are written, the rest counted.
        """
        a = self.A[i]
        scale = float(np.max(np.abs(a))) or 1.0
        a_s, b_s = a / scale, self.b[i] / scale
        nz = np.flatnonzero(a_s)
        if nz.size == 1:
            j = int(nz[0])
            op = "<=" if a_s[j] > 0 else ">="
            return f"{self.feature_names[j]} {op} {b_s / a_s[j] + 0.0:.{digits}g}"
        span = np.where(np.isfinite(self.hi - self.lo), self.hi - self.lo, 1.0)
        weight = np.abs(a_s) * np.maximum(span, 1e-12)
        order = nz[np.argsort(-weight[nz], kind="stable")]
        shown = order if max_terms is None else order[:max_terms]
        terms = []
        for k, j in enumerate(shown):
            c = a_s[j]
            sign = "-" if c < 0 else ("+" if k else "")
            mag = abs(c)
            coef = "" if np.isclose(mag, 1.0) else f"{mag:.{digits}g}*"
            terms.append(f"{sign} {coef}{self.feature_names[j]}".strip())
        rest = order.size - shown.size
        tail = f" + ({rest} smaller terms)" if rest > 0 else ""
        return f"{' '.join(terms)}{tail} <= {b_s + 0.0:.{digits}g}"

    def to_text(self, max_terms: int = 6, max_box_lines: int = 20, max_rows: int = 40) -> str:
        """A readable account: the rows with their origins, the box, the ball, the vertices.

        Network rows (neurons, class comparisons) are listed first, at most ``max_rows``;
        domain bounds that remain irredundant are summarised on one line.
        """
        n = self.x.size
        lines = [
            f"Why {self.predicted_name!r}? The network decides {self.predicted_name!r} "
            f"everywhere in this region around the input, where it is one affine map.",
            f"{self.num_rows} irredundant constraints (of {self.rows_before}); "
            f"{int(self.pattern.sum())}/{self.pattern.size} hidden neurons active:",
        ]
        width = len(str(self.num_rows))
        is_domain = [o.kind is RowKind.DOMAIN for o in self.origins]
        listed = [i for i in range(self.num_rows) if not is_domain[i]]
        for i in listed[:max_rows]:
            lines.append(f"  [{i + 1:>{width}}] {self.row_text(i, max_terms)}")
            origin = self.origins[i].describe(self.feature_names, self.class_names)
            lines.append(f"  {'':>{width}}    from {origin}")
        if len(listed) > max_rows:
            lines.append(f"  ... and {len(listed) - max_rows} more network constraints")
        dom = [i for i in range(self.num_rows) if is_domain[i]]
        if dom:
            shown = ", ".join(self.row_text(i) for i in dom[:6])
            more = f", ... ({len(dom) - 6} more)" if len(dom) > 6 else ""
            lines.append(f"  and {len(dom)} domain bounds: {shown}{more}")
        lines.append("Bounding box of the region (features the region constrains):")
        dom_lo = self.domain.lo if self.domain is not None else np.full(n, -np.inf)
        dom_hi = self.domain.hi if self.domain is not None else np.full(n, np.inf)
        tight = np.flatnonzero(
            (self.lo > dom_lo + 1e-9 * (1 + np.abs(dom_lo)))
            | (self.hi < dom_hi - 1e-9 * (1 + np.abs(dom_hi)))
        )
        for j in tight[:max_box_lines]:
            lines.append(
                f"  {self.lo[j] + 0.0:>12.6g} <= {self.feature_names[j]} "
                f"<= {self.hi[j] + 0.0:<12.6g} (input {self.x[j]:.6g})"
            )
        if tight.size > max_box_lines:
            lines.append(f"  ... and {tight.size - max_box_lines} more features")
        if tight.size < n:
            lines.append(f"  the other {n - tight.size} features span their whole domain")
        radius = "unbounded" if not np.isfinite(self.radius) else f"{self.radius:.6g}"
        lines.append(f"Largest ball inside the region: radius {radius}")
        if self.vertices is not None:
            lines.append(f"Vertices (V-representation): {len(self.vertices)}")
            for v in self.vertices[:16]:
                lines.append("  (" + ", ".join(f"{t + 0.0:.6g}" for t in v) + ")")
            if len(self.vertices) > 16:
                lines.append(f"  ... and {len(self.vertices) - 16} more")
        lines.append(f"({self.seconds * 1e3:.1f} ms, {self.stats.lps} LPs)")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_text()


class Explainer:
    """Exact explanations of one network's decisions.

    Parameters
    ----------
    net : the network.
    domain : the input box explanations live in: a :class:`Box`, ``(lo, hi)``, ``None``
        (all of R^n) or ``"model"`` (the ranges stated by the model file, if any; default).
    config : :class:`ExplainerConfig`.

    Examples
    --------
    >>> expl = Explainer(net).why(x)          # doctest: +SKIP
    >>> print(expl.to_text())                 # doctest: +SKIP
    """

    def __init__(
        self,
        net: ReluNetwork,
        domain: Box | tuple[ArrayLike, ArrayLike] | Literal["model"] | None = "model",
        config: ExplainerConfig | None = None,
    ) -> None:
        self.net = net
        if isinstance(domain, str):
            if domain != "model":
                raise InputError(f"domain must be a Box, (lo, hi), None or 'model', not {domain!r}")
            self.domain = net.domain
        else:
            self.domain = as_box(domain, net.input_dim)  # type: ignore[arg-type]
        self.config = config or ExplainerConfig()
        # For arg-min networks, explain the negated network: the same regions, and "c beats
        # j" rows that read y_c <= y_j in the original outputs.
        self._sign = -1.0 if self.config.decision == "argmin" else 1.0
        self._net = (
            net
            if self._sign > 0
            else net.with_output_transform(-np.ones(net.output_dim), np.zeros(net.output_dim))
        )
        self.feature_names = tuple(net.feature_name(i) for i in range(net.input_dim))
        self.class_names = tuple(net.class_name(j) for j in range(net.output_dim))

    def why(self, x: ArrayLike) -> WhyExplanation:
        """Explain the class the network gives ``x`` (shape (n,)).

        Raises :class:`InputError` for a wrong shape, non-finite values, or an input outside
        the domain.
        """
        t0 = time.perf_counter()
        net = self.net
        xa = net.check_input(x)
        if xa.shape[0] != 1:
            raise InputError(f"why() explains one input; got a batch of {xa.shape[0]}")
        x1 = xa[0]
        if self.domain is not None and not bool(self.domain.contains(x1)):
            out = np.flatnonzero((x1 < self.domain.lo) | (x1 > self.domain.hi))
            j = int(out[0])
            raise InputError(
                f"input lies outside the domain: {self.feature_names[j]} = {x1[j]:.6g} not in "
                f"[{self.domain.lo[j]:.6g}, {self.domain.hi[j]:.6g}]"
            )
        logits = net.forward(x1)
        c = int(np.argmax(self._sign * logits))
        pattern = net.patterns(x1)[0]
        poly, aff = region(self._net, pattern, self.domain, winner=c)
        # Hints for the reduction: x lies in its region, and every deeper neuron's row is a
        # combination of the first layer's active neurons.
        first = self._net.weights[0]
        keep, stats, (lo, hi), ball = irredundant_rows(
            poly.A,
            poly.b,
            tol=self.config.redundancy_tol,
            random_state=self.config.random_state,
            points=x1[None, :],
            subspace=first[pattern[: first.shape[0]]],
        )
        reduced = poly.subset(keep)
        verts = None
        bounded = bool(np.isfinite(lo).all() and np.isfinite(hi).all())
        if net.input_dim <= self.config.vertex_max_dim and bounded:
            verts = vertices(reduced.A, reduced.b, max_dim=self.config.vertex_max_dim)
        origins = tuple(reduced.origin(i, net) for i in range(keep.size))
        return WhyExplanation(
            x=x1,
            logits=logits,
            predicted=c,
            pattern=pattern,
            A=reduced.A,
            b=reduced.b,
            origins=origins,
            lo=lo,
            hi=hi,
            centre=ball.centre,
            radius=ball.radius,
            vertices=verts,
            L=self._sign * aff.L,
            d=self._sign * aff.d,
            rows_before=int(poly.b.size),
            stats=stats,
            seconds=time.perf_counter() - t0,
            feature_names=self.feature_names,
            class_names=self.class_names,
            domain=self.domain,
        )
