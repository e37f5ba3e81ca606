"""Runs inside the virtualenv that has bfcl-eval installed whole: BFCL's own multi-turn checker.

Reads cases as JSONL on stdin ({"id", "entry", "model", "truth"}: the entry's id, initial_config and
involved_classes; the model's calls as a list per turn of a list per step of call strings; the
ground truth as call strings per turn), writes {"id", "valid", "error_type"} lines, and the time the
checking took (wall clock and CPU) on stderr. Each case runs under its own model name, so BFCL's
module-global instance cache cannot carry state between cases; the cached instances are dropped
after each case.
"""

import json
import sys
import time

from bfcl_eval.eval_checker.multi_turn_eval import multi_turn_utils
from bfcl_eval.eval_checker.multi_turn_eval.multi_turn_checker import multi_turn_checker

cases = [json.loads(line) for line in sys.stdin]
start, start_cpu = time.perf_counter(), time.process_time()  # the checking alone: no imports, no I/O
verdicts = []
for n, case in enumerate(cases):
    model = f"agreement_case_{n}"
    try:
        result = multi_turn_checker(case["model"], case["truth"], case["entry"], case["entry"]["id"], model)
        verdict = {"id": case["id"], "valid": bool(result["valid"]), "error_type": result.get("error_type", "")}
    except Exception as exc:  # the official checker broke on this input
        verdict = {"id": case["id"], "valid": None, "error_type": f"crash: {type(exc).__name__}: {exc}"}
    for name in [k for k in vars(multi_turn_utils) if k.startswith(model)]:
        delattr(multi_turn_utils, name)
    verdicts.append(verdict)
elapsed, elapsed_cpu = time.perf_counter() - start, time.process_time() - start_cpu
for verdict in verdicts:
    sys.stdout.write(json.dumps(verdict) + "\n")
sys.stderr.write(f"checked {len(cases)} in {elapsed:.3f}s (cpu {elapsed_cpu:.3f}s)\n")
