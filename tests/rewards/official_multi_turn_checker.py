"""Runs inside the virtualenv that has bfcl-eval installed whole: BFCL's own multi-turn checker.

Reads cases as JSONL on stdin ({"id", "entry", "model", "truth"}: the entry's id, initial_config and
involved_classes; the model's calls as a list per turn of a list per step of call strings; the
ground truth as call strings per turn), writes {"id", "valid", "error_type"} lines. Each case runs
under its own model name, so BFCL's module-global instance cache cannot carry state between cases;
the cached instances are dropped after each case.
"""

import json
import sys
import time

from bfcl_eval.eval_checker.multi_turn_eval import multi_turn_utils
from bfcl_eval.eval_checker.multi_turn_eval.multi_turn_checker import multi_turn_checker

start = time.perf_counter()
count = 0
for n, line in enumerate(sys.stdin):
    case = json.loads(line)
    model = f"agreement_case_{n}"
    try:
        result = multi_turn_checker(case["model"], case["truth"], case["entry"], case["entry"]["id"], model)
        verdict = {"id": case["id"], "valid": bool(result["valid"]), "error_type": result.get("error_type", "")}
    except Exception as exc:  # the official checker broke on this input
        verdict = {"id": case["id"], "valid": None, "error_type": f"crash: {type(exc).__name__}: {exc}"}
    for name in [k for k in vars(multi_turn_utils) if k.startswith(model)]:
        delattr(multi_turn_utils, name)
    sys.stdout.write(json.dumps(verdict) + "\n")
    count += 1
sys.stderr.write(f"checked {count} in {time.perf_counter() - start:.3f}s\n")
