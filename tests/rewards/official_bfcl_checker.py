"""Runs inside the virtualenv that has bfcl-eval installed whole: BFCL's own AST checker's verdicts.

Reads cases as JSONL on stdin ({"id", "category", "docs", "output", "possible", "model", "language"}), writes
{"id", "valid", "error_type"} lines, and the time the checking took (wall clock and CPU) on stderr; a
crash of the official checker is reported, not hidden.
"""

import json
import sys
import time

from bfcl_eval.constants.enums import Language
from bfcl_eval.eval_checker.ast_eval.ast_checker import ast_checker

cases = [json.loads(line) for line in sys.stdin]
start, start_cpu = time.perf_counter(), time.process_time()
verdicts = []
for case in cases:
    try:
        language = {"python": Language.PYTHON, "java": Language.JAVA, "javascript": Language.JAVASCRIPT}
        result = ast_checker(case["docs"], case["output"], case["possible"], language[case["language"]],
                             case["category"], case["model"])  # fmt: skip
        verdict = {"id": case["id"], "valid": bool(result["valid"]), "error_type": result.get("error_type", "")}
    except Exception as exc:  # the official checker broke on this input
        verdict = {"id": case["id"], "valid": None, "error_type": f"crash: {type(exc).__name__}: {exc}"}
    verdicts.append(verdict)
elapsed = time.perf_counter() - start  # the checking alone: no imports, no I/O
elapsed_cpu = time.process_time() - start_cpu
for verdict in verdicts:
    sys.stdout.write(json.dumps(verdict) + "\n")
sys.stderr.write(f"checked {len(cases)} in {elapsed:.3f}s (cpu {elapsed_cpu:.3f}s)\n")
