"""Re-check a learned MNIST spec without a time limit, by the LP relaxation (NAP issue).

A second route beside the benchmark's re-check (``verify_spec``: a fresh verifier, 4x the
run's longest limit). It was written when that re-check said UNKNOWN, at 20 to 300 s, on
label 4's plain COARSEN NAP, which the run had proved in 3.7 s: the fresh relaxation's
first solve ran with HiGHS's presolve, whose dual simplex stalled (``benchmarks/lp_cold.py``);
since that solve runs without presolve, ``verify_spec`` proves it in 10 s. This script does
the warm-LP stage's proof on a freshly built model with no deadline:

1. the spec's implied steps replayed with fresh bounds (``check_implied``);
2. for the base NAP the run proved: symbolic bounds, the relaxation's layer tightening
   (``warm_tighten``), then each term ``y_c - y_j <= 0`` (ties count as violations),
   enlarged by the engine's ``safety``, checked by its relaxed minimum, proved by weak
   duality (``relaxed_margin``); every margin > 0 means no input of the region is
   misclassified;
3. the class's training inputs that obey the NAP (witnesses that it is not empty).

    python benchmarks/nap_recheck.py SPEC.json [--data mnist]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from relucid.errors import EmptyPolytopeError
from relucid.io import data_dir, load_onnx
from relucid.spec import NapSpec
from relucid.spec.data import nap_data
from relucid.spec.implied import check_implied, restore_base
from relucid.verify import MilpVerifier
from relucid.verify.tightening import class_margins, fresh_relaxation


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("spec", type=Path)
    ap.add_argument("--data", default="mnist")
    args = ap.parse_args()
    net = load_onnx(data_dir() / "mnistfc" / "mnist-net_256x4.onnx")
    spec = NapSpec.load(args.spec)
    spec.check(net)
    steps = spec.info.get("implied_steps") or []
    why = check_implied(net, spec.domain, spec.nap, steps) if steps else None
    if why is not None:
        raise SystemExit(f"implied steps do not replay: {why}")
    base = restore_base(spec.nap, steps)
    d = nap_data(args.data)
    members = int(spec.with_nap(base).contains(net, d.X_train[d.y_train == spec.label]).sum())
    t0 = time.perf_counter()
    try:
        model, relax, bounds = fresh_relaxation(net, spec.domain, base)
    except EmptyPolytopeError:
        raise SystemExit("bounds prove the base NAP empty") from None
    v = MilpVerifier()
    margins = list(
        class_margins(
            model,
            relax,
            bounds,
            base,
            spec.label,
            None,
            max_per_layer=v.warm_lp_max,
            safety=v.safety,
        )
    )
    ok = members > 0 and min(margins) > 0
    print(
        f"{args.spec.name}: base |P| {int((base >= 0).sum())}, {len(steps)} implied steps "
        f"replayed, {members} member inputs; relaxed margins {np.round(margins, 4).tolist()} "
        f"in {time.perf_counter() - t0:.0f} s: {'VERIFIED' if ok else 'not proved'}"
    )
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
