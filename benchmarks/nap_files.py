"""The NAP benchmark's files: each learner run's checkpoint name, and merging runs' results.

``benchmarks/nap.py`` writes one checkpoint file per learner run (named by
:func:`checkpoint_name` from the run's limits and verifier options) and ``--merge`` puts
other runs' rows into the results file (:func:`merge`).
"""

from __future__ import annotations

import datetime as dt
import json
import platform
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Any

from rich.console import Console

#: The refined-NAP threshold of rows that do not say theirs (made before rows had ``delta``).
DELTA = 0.95


def row_key(r: dict[str, Any]) -> tuple[str, int, str, float]:
    """Rows of one network, label, method and refined-NAP threshold replace each other."""
    return (r["network"], r["label"], r["method"], r.get("delta", DELTA))


def checkpoint_name(
    network: str,
    label: int,
    method: str,
    timeout: float,
    focus: float | None,
    block: float | None = None,
    retry: float | None = None,
    crown_share: float | None = None,
    crown_fail_share: float | None = None,
    delta: float = DELTA,
) -> str:
    """The checkpoint file of one learner run (``run_table`` writes it, ``merge`` reads it).
    A run from another refined NAP than delta 0.95's has its own file."""
    tail = "" if focus is None else f"-f{focus:g}"
    tail += "" if block is None else f"-b{block:g}"
    tail += "" if retry is None else f"-r{retry:g}"
    tail += "" if crown_share is None else f"-c{crown_share:g}"
    tail += "" if crown_fail_share is None else f"-cf{crown_fail_share:g}"
    tail += "" if delta == DELTA else f"-d{delta:g}"
    return f"{network}-label{label}-{method}-t{timeout:g}{tail}.json"


def merge(
    results: Path, parts: list[Path], console: Console, checkpoints: Path | None = None
) -> None:
    """Replace ``results``' rows by the parts' rows of the same network, label, method and
    delta (:func:`row_key`)
    (each stamped with its run's date, command and per-call limit ``timeout_s``); MNIST parts
    also go into ``mnist_runs``. Rows of runs with different limits sit side by side, each
    with its own ``timeout_s`` (rows merged before it existed get their file's limit).
    With ``checkpoints`` (the runs' folder), each learned row also gets the verdict counts
    of its checkpoint file (``checkpoint_calls``, ``checkpoint_unknown``: over every
    resumed part of the run)."""
    out = json.loads(results.read_text()) if results.exists() else {"rows": []}
    runs: list[str] = list(out.get("mnist_runs", []))
    for r in out["rows"]:
        if r["method"] not in ("baseline", "linf-ball") and "timeout_s" not in r:
            mnist_row = r["network"].startswith("mnist")
            r["timeout_s"] = out.get("mnist_timeout_s" if mnist_row else "timeout_s")
    for path in parts:
        part = json.loads(path.read_text())
        rows = part.get("rows", [])
        mnist = any(r["network"].startswith("mnist") for r in rows)
        keys = {row_key(r) for r in rows}
        day = str(part.get("date", ""))[:10]
        cmd = part.get("mnist_command") if mnist else part.get("command")
        timeout = part.get("mnist_timeout_s") if mnist else part.get("timeout_s")
        stamped = [{**r, "date": day, "command": cmd} for r in rows]
        for r in stamped:
            if r["method"] not in ("baseline", "linf-ball"):
                r.setdefault("timeout_s", timeout)
            ckpt = (
                None
                if checkpoints is None
                else checkpoints
                / checkpoint_name(
                    r["network"],
                    r["label"],
                    r["method"],
                    timeout,
                    r.get("focus_timeout_s"),
                    r.get("block_timeout_s"),
                    r.get("retry_timeout_s"),
                    r.get("crown_share"),
                    r.get("crown_fail_share"),
                    r.get("delta", DELTA),
                )
            )
            if ckpt is not None and ckpt.exists():
                verdicts = [
                    w
                    for v in json.loads(ckpt.read_text())["verdicts"].values()
                    for w in [*v.get("earlier", []), v]
                ]
                r["checkpoint_calls"] = len(verdicts)
                r["checkpoint_unknown"] = sum(v["status"] == "unknown" for v in verdicts)
                # the verifier's time over every resumed part (wall_s is the last part's)
                r["checkpoint_verifier_s"] = round(sum(v.get("seconds", 0.0) for v in verdicts), 1)
        out["rows"] = stamped + [r for r in out["rows"] if row_key(r) not in keys]
        if mnist:
            limits = {
                r.get("timeout_s")
                for r in out["rows"]
                if r["network"].startswith("mnist") and "timeout_s" in r
            }
            out["mnist_timeout_s"] = limits.pop() if len(limits) == 1 else "per row (timeout_s)"
            if cmd not in runs:
                runs.append(cmd)
        console.print(f"merged {len(rows)} rows from {path}")
    out["mnist_runs"] = runs
    results.write_text(json.dumps(out, indent=1) + "\n")
    console.print(f"wrote {results}")


def write_rows(
    out: Path, rows: list[dict[str, Any]], command: str, key: Callable[[dict[str, Any]], Hashable]
) -> None:
    """Write a run's rows to ``out`` (``machine``, ``date``, ``command``, ``rows``), each row
    stamped with the run's command and date; rows of earlier runs with another ``key`` are
    kept, each with its own command."""
    date = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    for r in rows:
        r["command"], r["date"] = command, date
    names = {key(r) for r in rows}
    if out.is_file():
        rows = [r for r in json.loads(out.read_text())["rows"] if key(r) not in names] + rows
    machine = f"{platform.node()} ({platform.processor() or platform.machine()})"
    payload = {
        "machine": f"{machine}, {platform.python_version()}",
        "date": date,
        "command": command,
        "rows": rows,
    }
    out.write_text(json.dumps(payload, indent=1) + "\n")
