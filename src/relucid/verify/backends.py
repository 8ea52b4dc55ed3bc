"""Choosing a verifier backend, and running many queries in parallel.

``milp`` (:class:`~relucid.verify.MilpVerifier`) is always there and the default;
``marabou`` needs the optional ``maraboupy`` extra (wheels for Python <= 3.11 on x86-64).
:func:`verify_many` spreads independent NAP queries over a process pool; each worker builds
its own backend once and keeps its MILP models across the queries it receives.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any

from relucid.errors import InputError
from relucid.network import ReluNetwork
from relucid.verify.query import NapQuery, Verifier, VerifyResult

BACKENDS = ("milp", "marabou")


def marabou_installed() -> bool:
    """Whether the ``marabou`` backend can run here."""
    try:
        from relucid.verify.marabou import marabou_available
    except ImportError:  # pragma: no cover - the module itself is always shipped
        return False
    return marabou_available()


def available_backends() -> list[str]:
    """The backends that can run on this machine, default first."""
    return ["milp"] + (["marabou"] if marabou_installed() else [])


def get_verifier(name: str = "milp", **options: Any) -> Verifier:
    """A backend by name; ``options`` go to its constructor (one it does not take is an
    :class:`~relucid.errors.InputError` naming it)."""
    cls: type[Verifier]
    if name == "milp":
        from relucid.verify.engine import MilpVerifier

        cls = MilpVerifier
    elif name == "marabou":
        from relucid.verify.marabou import MarabouVerifier

        cls = MarabouVerifier
    else:
        raise InputError(f"unknown verifier backend {name!r}; choose from {', '.join(BACKENDS)}")
    try:
        inspect.signature(cls).bind(**options)
    except TypeError as exc:
        raise InputError(f"the {name} backend does not take these options: {exc}") from None
    return cls(**options)


# -- process pool ----------------------------------------------------------------------------
_WORKER: dict[str, Any] = {}


def _init(backend: str, options: dict[str, Any], net: ReluNetwork) -> None:
    # One backend per worker process, on one thread so workers do not fight.
    from relucid.threads import limit_threads

    limit_threads(1)
    _WORKER["verifier"] = get_verifier(backend, **options)
    _WORKER["net"] = net


def _run(query: NapQuery, timeout: float | None) -> VerifyResult:
    verifier: Verifier = _WORKER["verifier"]
    result: VerifyResult = verifier.verify_nap(_WORKER["net"], query, timeout)
    return result


def verify_many(
    net: ReluNetwork,
    queries: Sequence[NapQuery],
    *,
    timeout: float | None = None,
    backend: str = "milp",
    workers: int | None = None,
    options: dict[str, Any] | None = None,
    on_result: Callable[[int, VerifyResult], None] | None = None,
) -> list[VerifyResult]:
    """Decide independent NAP queries, in parallel when ``workers > 1``.

    Results come back in the order of ``queries``; ``on_result(i, result)`` is called as
    each one finishes (progress bars, checkpoints). ``workers`` defaults to the CPU count;
    with one worker (or one query) everything runs in this process.
    """
    opts = dict(options or {})
    n_workers = min(workers or os.cpu_count() or 1, max(len(queries), 1))
    if n_workers <= 1:
        verifier = get_verifier(backend, **opts)
        out = []
        for i, q in enumerate(queries):
            res = verifier.verify_nap(net, q, timeout)
            if on_result is not None:
                on_result(i, res)
            out.append(res)
        return out
    results: list[VerifyResult | None] = [None] * len(queries)
    with ProcessPoolExecutor(n_workers, initializer=_init, initargs=(backend, opts, net)) as ex:
        futures = {ex.submit(_run, q, timeout): i for i, q in enumerate(queries)}
        for fut in as_completed(futures):
            i = futures[fut]
            res = fut.result()
            results[i] = res
            if on_result is not None:
                on_result(i, res)
    return [r for r in results if r is not None]
