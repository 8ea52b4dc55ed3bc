"""Fresh re-checks of the MNIST Table 2 NAPs that a ``benchmarks/nap.py --mnist`` run left in
its checkpoint files (issue: NAP learning, "every returned NAP re-verified independently").

Each COARSEN run is replayed from its checkpoint (every verdict cached: no verifier call),
then its refined NAP and its result are decided by a fresh ``MilpVerifier`` with the
benchmark's re-check limit (4 x the per-call timeout) and, as hints, the class's training
inputs that obey the NAP (the witnesses that it is not empty).

Run: ``python benchmarks/nap_recheck.py --checkpoints DIR [--labels 0,1,4] [--timeout 5]``;
prints one line per NAP and writes ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from relucid import data_dir, load_onnx
from relucid.domain import Box
from relucid.spec import NapLearner
from relucid.spec.data import nap_data
from relucid.verify import MilpVerifier


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoints", type=Path, required=True)
    ap.add_argument("--labels", default="0,1,4")
    ap.add_argument("--timeout", type=float, default=5.0, help="The run's per-call timeout.")
    ap.add_argument("--out", type=Path, default=Path("nap_recheck.json"))
    args = ap.parse_args()
    net = load_onnx(data_dir() / "mnistfc" / "mnist-net_256x4.onnx")
    net = net.replace(domain=Box(np.zeros(784), np.ones(784)))
    ds = nap_data("mnist")
    out = {}
    for label in (int(c) for c in args.labels.split(",")):
        ckpt = args.checkpoints / f"mnist-256x4-label{label}-coarsen-t{args.timeout:g}.json"
        learner = NapLearner(
            "coarsen",
            delta=0.95,
            timeout=args.timeout,
            start_timeout=max(args.timeout, 60.0),
            checkpoint=ckpt,
        )
        learner.fit(net, ds.X_train, ds.y_train, label)
        members = ds.X_train[ds.y_train == label]
        for name, spec in (("baseline", learner.refined_), ("coarsen", learner.spec_)):
            t = time.perf_counter()
            res = MilpVerifier(seed=11).verify_nap(net, spec.query(net, members), 4 * args.timeout)
            secs = round(time.perf_counter() - t, 2)
            out[f"{label}-{name}"] = (res.status.value, secs, spec.size, res.reason)
            print(label, name, spec.size, res.status.value, secs, res.reason, flush=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
