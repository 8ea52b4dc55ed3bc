"""The NAP step of ``relucid demo``: a minimal specification of one WBC class, checked."""

from __future__ import annotations

import time

from rich.console import Console

from relucid.datasets import Split
from relucid.network import ReluNetwork
from relucid.spec.coarsen import NapLearner
from relucid.verify.backends import get_verifier
from relucid.verify.query import Status


def run_nap_demo(console: Console, net: ReluNetwork, split: Split, label: int = 1) -> bool:
    """Learn a minimal NAP for ``label`` by group COARSEN, re-verify it, print coverage."""
    t0 = time.perf_counter()
    X_train, y_train = split.X_train, split.y_train
    X_test, y_test = split.X_test, split.y_test
    console.rule(f"Specify: a minimal NAP specification of class {label}")
    with console.status("mining the refined NAP (delta 0.95) and coarsening it (group)..."):
        learner = NapLearner("group", delta=0.95, timeout=60).fit(net, X_train, y_train, label)
    spec = learner.spec_
    # A fresh verifier on a 1-neuron NAP is a hard whole-network query: about 40 s with the
    # optimised bounds (47-213 s without; HiGHS's path varies), so it gets 300 s.
    members = X_train[y_train == label]
    again = get_verifier("milp").verify_nap(net, spec.query(net, members), 300)
    ok = again.status is Status.VERIFIED
    console.print(
        f"{spec}\nrefined |P| = {learner.refined_.size} -> {spec.size} in "
        f"{learner.calls_} verifier calls ({time.perf_counter() - t0:.1f} s); "
        f"train coverage {spec.coverage(net, X_train[y_train == label]):.1%}, "
        f"test coverage {spec.coverage(net, X_test[y_test == label]):.1%}\n"
        f"check: re-verified by a fresh verifier: {'yes' if ok else 'NO'}",
        markup=False,
        highlight=False,
    )
    return ok
