"""Where a NAP learner's verifier calls run: here, in a process pool, or on a Ray cluster.

An executor decides a list of independent NAP queries and returns their results in order.
The learners ask for several queries at once only where the algorithm has independent
ones (STOCHCOARSEN's samples of one round, the two halves of a failed block in group
COARSEN); their results are cached like any other verdict, so the learned NAP depends only
on the verdicts, not on where they were computed.

* :class:`SerialExecutor`: one verifier in this process.
* :class:`ProcessExecutor`: a pool of worker processes, kept for the whole run; each builds
  its backend once (and keeps its MILP models across the queries it gets).
* :class:`RayExecutor`: Ray actors, one verifier each (the optional ``ray`` extra): a local
  Ray instance by default, or a running cluster by ``address``, for verifier calls spread
  beyond one machine.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Literal, Protocol

from relucid.errors import InputError
from relucid.network import ReluNetwork
from relucid.verify import NapQuery, Verifier, VerifyResult, get_verifier
from relucid.verify.backends import _init, _run

ExecutorName = Literal["serial", "process", "ray"]
EXECUTORS: tuple[str, ...] = ("serial", "process", "ray")


class Executor(Protocol):
    """Decides independent NAP queries; ``workers`` is how many run at once."""

    name: str
    workers: int

    def map(
        self, net: ReluNetwork, queries: Sequence[NapQuery], timeout: float | None
    ) -> list[VerifyResult]: ...

    def close(self) -> None: ...


class SerialExecutor:
    """Every query in this process, one after the other."""

    name = "serial"
    workers = 1

    def __init__(self, verifier: Verifier) -> None:
        self.verifier = verifier

    def map(
        self, net: ReluNetwork, queries: Sequence[NapQuery], timeout: float | None
    ) -> list[VerifyResult]:
        return [self.verifier.verify_nap(net, q, timeout) for q in queries]

    def close(self) -> None:
        pass


class ProcessExecutor:
    """A process pool kept across calls, for one network (the first one it is given)."""

    name = "process"

    def __init__(
        self,
        backend: str = "milp",
        workers: int | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        self.backend = backend
        self.options = dict(options or {})
        self.workers = max(1, workers or os.cpu_count() or 1)
        self._pool: ProcessPoolExecutor | None = None
        self._net: ReluNetwork | None = None

    def map(
        self, net: ReluNetwork, queries: Sequence[NapQuery], timeout: float | None
    ) -> list[VerifyResult]:
        if self._pool is None:
            self._net = net
            self._pool = ProcessPoolExecutor(
                self.workers, initializer=_init, initargs=(self.backend, self.options, net)
            )
        elif net is not self._net:
            raise InputError("a ProcessExecutor serves one network; make another for this one")
        futures = [self._pool.submit(_run, q, timeout) for q in queries]
        return [f.result() for f in futures]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


class RayExecutor:
    """Ray actors, each with its own verifier and a copy of the network.

    Parameters
    ----------
    backend, options : the verifier each actor builds.
    workers : number of actors (default: the CPUs Ray reports).
    address : a running Ray cluster (``"auto"`` or ``"ray://host:port"``); by default a
        local instance is started (and shut down by :meth:`close`).
    """

    name = "ray"

    def __init__(
        self,
        backend: str = "milp",
        workers: int | None = None,
        options: dict[str, Any] | None = None,
        address: str | None = None,
    ) -> None:
        try:
            import ray
        except ImportError as exc:
            raise InputError(
                "the ray executor needs the optional 'ray' extra: pip install 'relucid[ray]'"
            ) from exc
        self._ray = ray
        self._started = False
        if not ray.is_initialized():
            ray.init(
                address=address,
                num_cpus=None if address else (workers or os.cpu_count() or 1),
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
            self._started = True
        self.backend = backend
        self.options = dict(options or {})
        self.workers = max(1, workers or int(ray.cluster_resources().get("CPU", 1)))
        self._actors: list[Any] = []
        self._net: ReluNetwork | None = None

    def map(
        self, net: ReluNetwork, queries: Sequence[NapQuery], timeout: float | None
    ) -> list[VerifyResult]:
        ray = self._ray
        if not self._actors:
            self._net = net
            actor = ray.remote(num_cpus=1)(_VerifierActor)
            ref = ray.put(net)
            self._actors = [
                actor.remote(self.backend, self.options, ref) for _ in range(self.workers)
            ]
        elif net is not self._net:
            raise InputError("a RayExecutor serves one network; make another for this one")
        refs = [
            self._actors[i % len(self._actors)].verify.remote(q, timeout)
            for i, q in enumerate(queries)
        ]
        return list(ray.get(refs))

    def close(self) -> None:
        for a in self._actors:
            self._ray.kill(a)
        self._actors = []
        if self._started:
            self._ray.shutdown()
            self._started = False


class _VerifierActor:
    """One Ray actor: a verifier kept across calls (its MILP models too)."""

    def __init__(self, backend: str, options: dict[str, Any], net: ReluNetwork) -> None:
        from relucid.threads import limit_threads

        limit_threads(1)
        self.verifier = get_verifier(backend, **options)
        self.net = net

    def verify(self, query: NapQuery, timeout: float | None) -> VerifyResult:
        return self.verifier.verify_nap(self.net, query, timeout)


def make_executor(
    name: str,
    *,
    verifier: Verifier | None = None,
    backend: str = "milp",
    workers: int | None = None,
    address: str | None = None,
    options: dict[str, Any] | None = None,
) -> Executor:
    """An executor by name (``serial``, ``process``, ``ray``); ``options`` go to each
    worker's verifier (``get_verifier(backend, **options)``) and to the serial one when no
    ``verifier`` is given."""
    if name == "serial":
        return SerialExecutor(verifier or get_verifier(backend, **(options or {})))
    if name == "process":
        return ProcessExecutor(backend, workers, options)
    if name == "ray":
        return RayExecutor(backend, workers, options, address=address)
    raise InputError(f"unknown executor {name!r}; choose from {', '.join(EXECUTORS)}")
