"""How many CPU threads this process's numeric libraries use.

The verifier's stages run on two thread pools: torch's (the optimised bounds) and the BLAS
library under numpy (the attack, the symbolic bounds). :func:`limit_threads` caps both. A
process that shares the machine's cores with others needs it: BLAS threads that wait for
busy cores spin instead of sleeping, and on mnist-256x4 NAP queries (two processes on this
2-core machine) the attack, 40 steps of numpy matrix products, took 0.7 s with two BLAS
threads against 0.28 s with one, and up to 5.9 s in a COARSEN run beside another process.
"""

from __future__ import annotations

from relucid.errors import InputError


def limit_threads(n: int) -> None:
    """Run torch and BLAS on at most ``n`` threads in this process from now on."""
    if n < 1:
        raise InputError(f"threads must be at least 1, got {n}")
    import torch
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=n, user_api="blas")  # numpy is loaded: env variables are too late
    torch.set_num_threads(n)
