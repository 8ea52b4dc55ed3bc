"""The implied pass (ours): free the fixed neurons whose state the rest of the NAP implies.

A neuron ``i`` fixed in a NAP ``P`` splits the region of ``P`` with ``i`` freed into two
(closed sides, as :meth:`~relucid.verify.NapQuery.obeys` reads them)::

    R(P with i free) = R(P) ∪ R(P with i flipped)

When symbolic bounds (:func:`~relucid.verify.symbolic_bounds`, float64 with a rounding pad)
prove the flipped region empty, ``R(P with i free) = R(P)``: the coarser NAP has the same
inputs, so it is a specification exactly when ``P`` is, with the same coverage and volume.
Each such check is one bound pass (about 50 ms on mnist-net_256x4) instead of a verifier
call on the coarser query, which the verifier often cannot finish: without the neuron's
constraint its optimised bounds and LP lose a row they used.

On mnist-net_256x4 this matters a lot. From a group-COARSEN NAP of label 1 (|P| 622, every
singleton already asked of the verifier at 1 s or 15 s), 197 more neurons are implied, 196
of them in the last hidden layer: |P| 425 for the same region. In sequence with a warmed
verifier, freeing such a neuron was UNKNOWN at 5 s for 3 of 4 sampled ones while its
flipped region was empty by bounds in 10 ms.

The pass runs after a method's own coarsening (on its VERIFIED result), so the verifier
calls before it are the method's own. Its steps ``(neuron, state)`` are kept, so the NAP the
verifier proved (``base``) is rebuilt from the result, and :func:`check_implied` replays
them with fresh bounds: the certificate of the result is ``base`` VERIFIED plus every step.

Minimality in COARSEN's sense is kept: freeing neurons only enlarges the region, and a
neuron kept because freeing it failed from a finer NAP still fails from this one.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

from relucid.domain import Box
from relucid.errors import InputError
from relucid.network import ReluNetwork
from relucid.verify.bounds import symbolic_bounds
from relucid.verify.query import Status, Verifier, VerifyResult

if TYPE_CHECKING:
    from relucid.spec.nap import NapSpec

Int8Array = NDArray[np.int8]


@dataclass(frozen=True)
class ImpliedPass:
    """The result of :func:`drop_implied`.

    ``nap`` the coarser NAP (same region as the input NAP); ``steps`` the neurons freed, in
    order, each with the state it had; ``checked`` how many neurons were tried; ``seconds``.
    """

    nap: Int8Array
    steps: tuple[tuple[int, int], ...]
    checked: int
    seconds: float

    def base(self) -> Int8Array:
        """The NAP the pass started from."""
        return restore_base(self.nap, self.steps)


def flip_is_empty(net: ReluNetwork, domain: Box, nap: Int8Array, neuron: int) -> bool:
    """Whether symbolic bounds prove that no input of ``domain`` obeys ``nap`` with the
    fixed ``neuron`` flipped to its other state (then freeing it changes no input)."""
    if nap[neuron] < 0:
        raise InputError(f"neuron {neuron} is free in the NAP: there is no state to flip")
    flipped = nap.copy()
    flipped[neuron] = 1 - nap[neuron]
    return symbolic_bounds(net, domain, flipped).empty


def drop_implied(
    net: ReluNetwork,
    domain: Box,
    nap: Int8Array,
    order: Sequence[int] | None = None,
) -> ImpliedPass:
    """Free, in ``order`` (default: flat index order), each fixed neuron whose flipped
    region is empty by bounds, given the neurons freed before it."""
    t0 = time.perf_counter()
    cur = np.asarray(nap, np.int8).copy()
    if cur.shape != (net.num_hidden,):
        raise InputError(f"the NAP has {cur.size} entries, {net!r} has {net.num_hidden}")
    todo = [int(i) for i in (np.flatnonzero(cur >= 0) if order is None else order)]
    steps: list[tuple[int, int]] = []
    checked = 0
    for i in todo:
        if cur[i] < 0:
            continue
        checked += 1
        if flip_is_empty(net, domain, cur, i):
            steps.append((i, int(cur[i])))
            cur[i] = -1
    return ImpliedPass(cur, tuple(steps), checked, time.perf_counter() - t0)


def restore_base(nap: Int8Array, steps: Sequence[Sequence[int]]) -> Int8Array:
    """The NAP before the implied pass: ``nap`` with each step's neuron fixed again."""
    base = np.asarray(nap, np.int8).copy()
    for i, state in steps:
        if base[int(i)] >= 0 or int(state) not in (0, 1):
            raise InputError(f"bad implied step ({i}, {state}) for this NAP")
        base[int(i)] = int(state)
    return base


def check_implied(
    net: ReluNetwork, domain: Box, nap: Int8Array, steps: Sequence[Sequence[int]]
) -> str | None:
    """Replay the steps from the base NAP with fresh bounds: None when each step's flipped
    region is empty (so ``nap`` has the base NAP's region), else why not."""
    cur = restore_base(nap, steps)
    for i, state in steps:
        if not flip_is_empty(net, domain, cur, int(i)):
            return f"freeing neuron {i} (state {state}) is not implied: its flip is not empty"
        cur[int(i)] = -1
    if not np.array_equal(cur, nap):
        return "the steps do not lead from the base NAP to this one"
    return None


def verify_spec(
    net: ReluNetwork,
    spec: NapSpec,
    verifier: Verifier,
    timeout: float | None,
    X: ArrayLike | None = None,
) -> VerifyResult:
    """Re-verify a learned spec. One with implied steps (``info["implied_steps"]``) is
    checked by its certificate: the steps replayed with fresh bounds, then the base NAP
    (the one its run's verifier proved) verified by ``verifier``; when a step does not
    replay, the spec itself is verified. ``X``: the class's inputs, non-emptiness hints."""
    steps = spec.info.get("implied_steps") or []
    try:
        why = check_implied(net, spec.domain, spec.nap, steps) if steps else "no implied steps"
    except InputError as exc:  # malformed steps: no certificate
        why = str(exc)
    if why is not None:
        return verifier.verify_nap(net, spec.query(net, X), timeout)
    base = spec.with_nap(restore_base(spec.nap, steps))
    res = verifier.verify_nap(net, base.query(net, X), timeout)
    if res.status is Status.VERIFIED:
        note = (
            f"{res.reason}; for the base NAP (|P| {base.size}), whose region this one has: "
            f"the flipped regions of its {len(steps)} implied neurons are empty by bounds"
        )
        return replace(res, reason=note)
    # a counterexample of the base obeys this coarser NAP too; an UNKNOWN stays UNKNOWN
    return replace(res, reason=f"{res.reason} (base NAP, |P| {base.size})")
