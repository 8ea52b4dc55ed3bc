r"""Optimised linear bounds under a NAP: alpha-CROWN slopes and beta-CROWN multipliers.

A NAP's fixed neurons are split constraints: ``s_i z_i(x) >= 0`` with ``s_i = +1`` for a
fixed-active and ``-1`` for a fixed-inactive neuron (minimal-NAP paper, section 2.1). Plain
back-substitution (:func:`~relucid.verify.symbolic_bounds`) uses them only to clip each
neuron's own interval; here they enter every bound through Lagrange multipliers
``beta_i >= 0`` (beta-CROWN, Wang et al. 2021): for every ``x`` of the region ``R_P``,

.. math:: g(x) \;\ge\; g(x) - \sum_i \beta_i s_i z_i(x) + \gamma^\top (A x - b),

so a lower bound of the right-hand side over the *relaxed* network (fixed neurons linear,
free unstable ones between ``alpha z`` and the chord ``u (z - l) / (u - l)``, input in the
box, ``gamma >= 0`` for optional input half-spaces ``A x <= b``) is a lower bound of ``g`` on
``R_P``. Every choice of ``alpha in [0, 1]``, ``beta >= 0``, ``gamma >= 0`` gives a valid
bound; gradient ascent (Adam, projected) only makes it tighter (alpha-CROWN, Xu et al. 2021).
At the optimum it would equal the LP over the triangle relaxation with the NAP's rows *less*
the interval rows ``l <= z <= u`` of the fixed neurons (which the LP also has); first-order
steps stop short of it. What it buys on mnist-net_256x4 (``benchmarks/verify.py``): plain
back-substitution leaves every margin of the refined delta = 0.95 NAPs negative (-2 to -5),
the optimised bounds prove six of the nine refined NAPs outright in 0.1-0.4 s each.

The core works on a batch of ``D`` sub-problems at once (for example several finer NAPs of
one query), each with ``S`` specifications (rows of ``lambda`` on one layer's
pre-activations): tensors are shaped ``(D, S, n)``.

Floating point. Every bound returned is evaluated in float64 on the CPU and lowered by
``4 (n_0 + sum_k n_k + 4 L) eps`` times the magnitude of the sums that made it (as
:func:`~relucid.verify.symbolic_bounds` does). This covers the rounding of the products in
practice; it is not a proof in the sense of interval arithmetic.

Search precision and device. The Adam steps only *look for* slopes and multipliers, and any
in range give a valid bound, so the search may run in ``CrownConfig.search_dtype`` on
``CrownConfig.device`` (float32 on a GPU), and the bound is then evaluated once, as above,
at the best parameters it found. On one CPU thread a float32 step costs 0.65x a float64
one for nine output margins and 0.45x for a layer's 300 neuron bounds (both shapes of the
mnist-net_256x4 NAP queries), but the optimisation takes other paths: over six COARSEN
NAPs of label 1 the output bounds took 10.2 s against 8.6 s, the layer tightening 17.2 s
against 25.4 s, and the bounds reached differed both ways. The default stays float64 on
the CPU (the results in ``benchmarks/results`` were made with it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

from relucid.domain import Box
from relucid.errors import InputError
from relucid.network import ReluNetwork
from relucid.verify.bounds import Bounds
from relucid.verify.crown_parts import BoundResult, CrownConfig, NetTensors, Relax

FloatArray = NDArray[np.float64]
Int8Array = NDArray[np.int8]
Tensor = torch.Tensor

_EPS = float(np.finfo(np.float64).eps)


class CrownBounds:
    """Optimised bounds of one network over one box (and optional rows ``A x <= b``).

    Parameters
    ----------
    net : the network.
    box : bounded input box.
    A, b : optional input half-spaces, each handled by a multiplier.
    config : optimisation settings.
    """

    def __init__(
        self,
        net: ReluNetwork,
        box: Box,
        A: ArrayLike | None = None,
        b: ArrayLike | None = None,
        config: CrownConfig | None = None,
    ) -> None:
        if box.dim != net.input_dim:
            raise InputError(f"box has {box.dim} features, {net!r} has {net.input_dim} inputs")
        if not box.is_bounded:
            raise InputError("bounds need a bounded box (every side finite)")
        self.net = net
        self.box = box
        self.config = config or CrownConfig()
        self.W = [torch.tensor(w, dtype=torch.float64) for w in net.weights]
        self.b = [torch.tensor(v, dtype=torch.float64) for v in net.biases]
        self.absW = [w.abs() for w in self.W]
        self.absb = [v.abs() for v in self.b]
        self.lo = torch.tensor(box.lo, dtype=torch.float64)
        self.hi = torch.tensor(box.hi, dtype=torch.float64)
        self.mag_x = torch.maximum(self.lo.abs(), self.hi.abs())
        self.A: Tensor | None = None
        self.rhs: Tensor | None = None
        if A is not None and b is not None and np.size(A):
            self.A = torch.tensor(np.atleast_2d(np.asarray(A, np.float64)))
            self.rhs = torch.tensor(np.asarray(b, np.float64).reshape(-1))
        self._exact = NetTensors(self.W, self.b, self.lo, self.hi, self.A, self.rhs)
        search_dtype = getattr(torch, self.config.search_dtype)
        self._search = self._exact.to(search_dtype, torch.device(self.config.device))
        self.num_hidden_layers = len(net.weights) - 1
        terms = net.input_dim + sum(net.hidden_sizes) + 4 * len(net.weights)
        self._pad_factor = 4.0 * terms * _EPS
        # The last output optimum per set of rows: the start of the next call with the same
        # rows (a COARSEN sequence asks the same margins under NAPs one neuron apart).
        self._warm: dict[bytes, BoundResult] = {}

    # -- the core: one back-substitution for a batch --------------------------------------
    def backsub(
        self,
        K: int,
        spec: Tensor,
        relax: Sequence[Relax],
        alpha: Sequence[Tensor | None],
        beta: Sequence[Tensor | None],
        gamma: Tensor | None,
        *,
        want_mu: bool = False,
        want_pad: bool = False,
        tensors: NetTensors | None = None,
    ) -> tuple[Tensor, list[Tensor], Tensor, Tensor]:
        """Lower bound of ``spec @ z_K`` (spec (D, S, n_K)) at the given parameters.

        ``relax[j]`` for hidden layers ``j < K``; ``beta[j]`` (D, S, n_j) for hidden layers
        ``j <= K`` (None: no multipliers there); ``gamma`` (D, S, m) for the input rows.
        ``tensors``: the network in the dtype and on the device of the arguments (default
        float64 on the CPU; the rounding pad needs that one).
        Returns ``(bound (D, S), mu per layer j < K (if asked), lamx (D, S, n_0), pad)``.
        """
        net = self._exact if tensors is None else tensors
        if want_pad and net is not self._exact:
            raise ValueError("the rounding pad is computed in float64 on the CPU only")
        lam = spec
        const = torch.zeros(spec.shape[:2], dtype=spec.dtype, device=spec.device)
        mag = torch.zeros_like(const) if want_pad else None
        mus: list[Tensor] = []
        k = K
        while True:
            b_k = beta[k] if k < self.num_hidden_layers else None
            if b_k is not None:
                lam = lam - b_k * relax[k].sign[:, None, :]
            const = const + lam @ net.b[k]
            if mag is not None:
                mag = mag + lam.abs() @ self.absb[k]
            if k == 0:
                break
            mu = lam @ net.W[k]
            r = relax[k - 1]
            neg = mu.clamp(max=0.0)
            a = alpha[k - 1]
            lower_part = mu.clamp(min=0.0) * a if a is not None else torch.zeros_like(mu)
            lam = (
                mu * r.act[:, None, :]
                + (lower_part + neg * r.slope[:, None, :]) * r.uns[:, None, :]
            )
            chord = (neg * r.icpt[:, None, :] * r.uns[:, None, :]).sum(-1)
            const = const + chord
            if mag is not None:
                mag = mag + chord.abs()
            if want_mu:
                mus.append(mu)
            k -= 1
        lamx = lam @ net.W[0]
        if gamma is not None and net.A is not None and net.rhs is not None:
            lamx = lamx + gamma @ net.A
            const = const - gamma @ net.rhs
            if mag is not None:
                mag = mag + (gamma @ net.rhs.abs())
        val = (lamx.clamp(min=0.0) * net.lo + lamx.clamp(max=0.0) * net.hi).sum(-1) + const
        pad = (
            self._pad_factor * (mag + lamx.abs() @ self.mag_x)
            if mag is not None
            else torch.zeros_like(val)
        )
        mus.reverse()
        return val, mus, lamx, pad

    def optimise(
        self,
        K: int,
        spec: Tensor,
        relax: Sequence[Relax],
        iterations: int,
        *,
        alpha: Sequence[Tensor | None] | None = None,
        beta: Sequence[Tensor | None] | None = None,
        gamma: Tensor | None = None,
        deadline: float | None = None,
        want_mu: bool = False,
        stop_above: Tensor | None = None,
    ) -> BoundResult:
        """Lower bounds of ``spec @ z_K``, optimised over the slopes and multipliers.

        Starts from ``alpha`` / ``beta`` / ``gamma`` when given (warm start), else CROWN's
        slopes and zero multipliers, once per schedule of the config (see
        :class:`CrownConfig`). Keeps, per specification, the best parameters seen over
        every schedule; the returned bound is theirs, evaluated in float64 on the CPU and
        lowered by the rounding pad (the search itself runs in the config's
        ``search_dtype`` on its ``device``). Stops early at the deadline or once every
        bound exceeds ``stop_above`` (D, S). Arguments and results are float64 CPU tensors.
        """
        cfg = self.config
        net = self._search
        dtype, device = net.lo.dtype, net.lo.device
        exact = net is self._exact

        def cv(t: Tensor) -> Tensor:
            return t if exact else t.to(dtype=dtype, device=device)

        D, S = spec.shape[:2]
        R = max(len(cfg.schedules), 1)
        hidden = min(K + 1, self.num_hidden_layers)
        spec_r = cv(spec).repeat(1, R, 1)
        relax_s = relax if exact else [r.to(dtype, device) for r in relax]

        def start(given: Tensor | None, default: Tensor) -> list[Tensor]:
            base = cv((given if given is not None else default).detach())
            return [base.clone().requires_grad_() for _ in range(R)]

        # Parameters per layer and schedule, each (D, S, n); concatenated along S to run.
        a_par: list[list[Tensor] | None] = []
        for j in range(K):
            uns = bool(relax[j].uns.any())
            given = None if alpha is None else alpha[j]
            a_par.append(start(given, relax[j].initial_alpha(S)) if uns else None)
        b_par: list[list[Tensor] | None] = []
        for j in range(hidden):
            fixed = j < len(relax) and bool((relax[j].sign != 0).any())
            given = None if beta is None else beta[j]
            zero = torch.zeros(D, S, self.W[j].shape[0], dtype=dtype, device=device)
            b_par.append(start(given, zero) if fixed else None)
        g_par: list[Tensor] | None = None
        if self.A is not None:
            zero = torch.zeros(D, S, self.A.shape[0], dtype=dtype, device=device)
            g_par = start(gamma, zero)

        def joined(par: list[Tensor] | None) -> Tensor | None:
            return None if par is None else torch.cat(par, dim=1)

        groups: list[dict] = []
        decays: list[float] = []
        for r, (lr_a, lr_b, dec) in enumerate(cfg.schedules[:R]):
            alphas = [p[r] for p in a_par if p is not None]
            betas = [p[r] for p in b_par if p is not None] + ([g_par[r]] if g_par else [])
            for params, lr in ((alphas, lr_a), (betas, lr_b)):
                if params:
                    groups.append({"params": params, "lr": lr})
                    decays.append(dec)
        steps = iterations if groups else 0
        opt = torch.optim.Adam(groups) if steps else None
        sched = None
        if opt is not None:
            factors = [_decay(dec) for dec in decays]
            sched = torch.optim.lr_scheduler.LambdaLR(opt, factors)

        # A search in lower precision stops only a little above (its rounding): the bound
        # evaluated in float64 at its parameters must still pass.
        stop_r = (
            None
            if stop_above is None
            else cv(stop_above + (0.0 if exact else 1e-4 * (1.0 + stop_above.abs()))).repeat(1, R)
        )
        best = torch.full((D, R * S), -torch.inf, dtype=dtype, device=device)
        best_a = [None if p is None else joined(p).detach().clone() for p in a_par]  # type: ignore[union-attr]
        best_b = [None if p is None else joined(p).detach().clone() for p in b_par]  # type: ignore[union-attr]
        best_g = None if g_par is None else joined(g_par).detach().clone()  # type: ignore[union-attr]

        def keep(new: Tensor | None, old: Tensor | None, mask: Tensor) -> Tensor | None:
            if new is None or old is None:
                return old
            return torch.where(mask, new.detach(), old)

        window = best.clone()
        for it in range(steps + 1):
            with torch.set_grad_enabled(it < steps):
                a_now = [joined(p) for p in a_par]
                b_now = [joined(p) for p in b_par]
                g_now = joined(g_par)
                val, _, _, _ = self.backsub(K, spec_r, relax_s, a_now, b_now, g_now, tensors=net)
            better = val.detach() > best
            if bool(better.any()):
                best = torch.where(better, val.detach(), best)
                mask = better[:, :, None]
                best_a = [keep(a, o, mask) for a, o in zip(a_now, best_a, strict=True)]
                best_b = [keep(v, o, mask) for v, o in zip(b_now, best_b, strict=True)]
                best_g = keep(g_now, best_g, mask)
            if it == steps or opt is None or sched is None:
                break
            if stop_r is not None and bool((best.view(D, R, S).amax(dim=1) > stop_r[:, :S]).all()):
                break
            if deadline is not None and time.perf_counter() > deadline:
                break
            if it and it % cfg.stall_window == 0:
                # Stalled: no bound gained more than stall_tol (relative) in the window.
                gain = best - window
                if not bool((gain > cfg.stall_tol * (1.0 + best.abs())).any()):
                    break
                window = best.clone()
            opt.zero_grad(set_to_none=True)
            (-val.sum()).backward()
            opt.step()
            sched.step()
            with torch.no_grad():
                for p in a_par:
                    for a in p or ():
                        a.clamp_(0.0, 1.0)
                for p in [*b_par, g_par]:
                    for v in p or ():
                        v.clamp_(min=0.0)
        # Per specification, the schedule with the best bound.
        pick = best.view(D, R, S).argmax(dim=1)  # (D, S)

        def gather(t: Tensor | None) -> Tensor | None:
            if t is None:
                return None
            v = t.view(D, R, S, t.shape[-1])
            idx = pick[:, None, :, None].expand(D, 1, S, t.shape[-1])
            return v.gather(1, idx)[:, 0].to(dtype=torch.float64, device="cpu")

        fin_a = [gather(a) for a in best_a]
        fin_b = [gather(v) for v in best_b]
        fin_g = gather(best_g)
        with torch.no_grad():
            val, mus, lamx, pad = self.backsub(
                K, spec, relax, fin_a, fin_b, fin_g, want_mu=want_mu, want_pad=True
            )
        x = torch.where(lamx >= 0, self.lo, self.hi)
        return BoundResult(val - pad, fin_a, fin_b, fin_g, mus, x)

    # -- whole-network bounds for one NAP ----------------------------------------------------
    def relax_layers(
        self, lower: Sequence[Tensor], upper: Sequence[Tensor], naps: Sequence[Tensor]
    ) -> list[Relax]:
        """Per hidden layer, the relaxation of a batch ((D, n) tensors each)."""
        return [Relax.of(lo, hi, p) for lo, hi, p in zip(lower, upper, naps, strict=True)]

    def split_nap(self, nap: ArrayLike) -> list[Tensor]:
        offs = self.net.layer_offsets
        flat = torch.as_tensor(np.asarray(nap, dtype=np.int64))
        return [flat[offs[k] : offs[k + 1]][None, :] for k in range(len(offs) - 1)]

    def tighten(
        self,
        nap: ArrayLike,
        start: Bounds,
        *,
        deadline: float | None = None,
        iterations: int | None = None,
        layers: Sequence[int] | None = None,
    ) -> Bounds:
        """Tighten every free unstable neuron's bounds, layer by layer (see module notes).

        ``layers``: the hidden layers to tighten (default all).

        Returns bounds contained in ``start`` (method ``"lp"``-grade but labelled
        ``"symbolic"``), ``empty`` when some neuron's bounds cross. Stops tightening at the
        deadline (the bounds found so far stay valid).
        """
        if start.empty:
            return start
        iters = self.config.iterations if iterations is None else iterations
        naps = self.split_nap(nap)
        lowers = [torch.tensor(a, dtype=torch.float64)[None, :] for a in start.lower[:-1]]
        uppers = [torch.tensor(a, dtype=torch.float64)[None, :] for a in start.upper[:-1]]
        offs = self.net.layer_offsets
        for K in range(self.num_hidden_layers):
            if deadline is not None and time.perf_counter() > deadline:
                break
            if layers is not None and K not in layers:
                continue
            p = naps[K][0]
            idx = torch.nonzero((p == -1) & (lowers[K][0] < 0) & (uppers[K][0] > 0)).flatten()
            if idx.numel() == 0:
                continue
            earlier_fixed = any(bool((naps[j] >= 0).any()) for j in range(K + 1))
            if K == 0 and not earlier_fixed and self.A is None:
                continue  # the first layer over a box: the interval bounds are exact
            relax = [
                *self.relax_layers(lowers[:K], uppers[:K], naps[:K]),
                Relax.of(lowers[K], uppers[K], naps[K]),
            ]
            n_k = self.W[K].shape[0]
            for chunk in idx.split(max(self.config.chunk // 2, 1)):
                m = chunk.numel()
                spec = torch.zeros(1, 2 * m, n_k, dtype=torch.float64)
                spec[0, torch.arange(m), chunk] = 1.0
                spec[0, m + torch.arange(m), chunk] = -1.0
                res = self.optimise(K, spec, relax, iters, deadline=deadline)
                low = res.lower[0]
                lowers[K][0, chunk] = torch.maximum(lowers[K][0, chunk], low[:m])
                uppers[K][0, chunk] = torch.minimum(uppers[K][0, chunk], -low[m:])
            crossed = torch.nonzero(lowers[K][0] > uppers[K][0]).flatten()
            if crossed.numel():
                sizes = [*self.net.hidden_sizes, self.net.output_dim]
                return Bounds(
                    tuple(np.full(s, np.inf) for s in sizes),
                    tuple(np.full(s, -np.inf) for s in sizes),
                    "symbolic",
                    empty=True,
                    empty_neuron=offs[K] + int(crossed[0]),
                )
        return Bounds(
            (*tuple(lo[0].numpy() for lo in lowers), start.lower[-1]),
            (*tuple(hi[0].numpy() for hi in uppers), start.upper[-1]),
            start.method,
        )

    def output_lower(
        self,
        nap: ArrayLike,
        bounds: Bounds,
        C: ArrayLike,
        *,
        deadline: float | None = None,
        iterations: int | None = None,
        stop_above: ArrayLike | None = None,
    ) -> FloatArray:
        """Optimised lower bounds of ``C y`` over ``R_P`` (C shape (r, n_out)), shape (r,)."""
        if bounds.empty:
            return np.full(np.atleast_2d(C).shape[0], np.inf)
        iters = self.config.output_iterations if iterations is None else iterations
        naps = self.split_nap(nap)
        relax = self.relax_layers(
            [torch.tensor(a)[None, :] for a in bounds.lower[:-1]],
            [torch.tensor(a)[None, :] for a in bounds.upper[:-1]],
            naps,
        )
        rows = np.ascontiguousarray(np.atleast_2d(np.asarray(C, np.float64)))
        spec = torch.tensor(rows)[None, :, :]
        stop = None if stop_above is None else torch.tensor(np.reshape(stop_above, (1, -1)))
        # Any slopes in [0, 1] and multipliers >= 0 give a valid bound, so the last optimum
        # for these rows is a sound start under any NAP (a free neuron ignores its
        # multiplier); on mnist-256x4 COARSEN queries it halves the steps to a stall.
        key = rows.tobytes()
        warm = self._warm.get(key)
        res = self.optimise(
            self.num_hidden_layers,
            spec,
            relax,
            iters,
            alpha=None if warm is None else warm.alpha,
            beta=None if warm is None else warm.beta,
            gamma=None if warm is None else warm.gamma,
            deadline=deadline,
            stop_above=stop,
        )
        if len(self._warm) >= 16:
            self._warm.pop(next(iter(self._warm)))
        self._warm[key] = res
        return np.asarray(res.lower[0].numpy(), dtype=np.float64)


def _decay(rate: float) -> Callable[[int], float]:
    """The step-size factor ``rate ** step`` of one parameter group."""
    return lambda step: rate**step
