"""relucid.threads: one call caps both torch's and BLAS's thread pools."""

from __future__ import annotations

import pytest
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from relucid.errors import InputError
from relucid.threads import limit_threads


def blas_threads() -> list[int]:
    return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]


def test_limit_threads_caps_torch_and_blas() -> None:
    before_torch = torch.get_num_threads()
    with threadpool_limits(limits=None):  # restores the BLAS pools on exit
        try:
            limit_threads(1)
            assert torch.get_num_threads() == 1
            assert blas_threads() and all(n == 1 for n in blas_threads())
        finally:
            torch.set_num_threads(before_torch)


def test_limit_threads_refuses_zero() -> None:
    with pytest.raises(InputError, match="at least 1"):
        limit_threads(0)
