"""Runs inside the virtualenv that has bfcl-eval installed whole: BFCL's own harness functions
score a directory of result files (as ``bfcl evaluate`` would, per entry), for a function-calling
model whose dotted names arrive with ``_``. Reads {"results": DIR} on stdin, writes {"id", "valid"} lines.
"""

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OPENAI_API_KEY", "unused")  # the handler builds a client it never calls

from bfcl_eval.constants.enums import Language, ReturnFormat  # noqa: E402
from bfcl_eval.eval_checker import eval_runner as runner  # noqa: E402
from bfcl_eval.utils import is_java, is_js, is_multi_turn, is_relevance_or_irrelevance  # noqa: E402

MODEL = "gpt-4o-2024-11-20-FC"
DATA = Path(runner.__file__).resolve().parent.parent / "data"
handler = runner.get_handler(MODEL)
request = json.loads(sys.stdin.read())
for file in sorted(Path(request["results"]).glob("BFCL_v4_*_result.json")):
    category = file.name.removeprefix("BFCL_v4_").removesuffix("_result.json")
    prompts = {e["id"]: e for e in map(json.loads, (DATA / f"BFCL_v4_{category}.json").read_text().splitlines())}
    answers_file = DATA / "possible_answer" / f"BFCL_v4_{category}.json"
    answers = {}
    if answers_file.is_file():
        answers = {a["id"]: a["ground_truth"] for a in map(json.loads, answers_file.read_text().splitlines())}
    for line in file.read_text().splitlines():
        item = json.loads(line)
        entry_id, result, prompt = item["id"], item["result"], prompts[item["id"]]
        if is_relevance_or_irrelevance(category):
            verdict = runner._evaluate_single_relevance_entry(handler, entry_id, result, prompt, MODEL, category)
        elif is_multi_turn(category):
            verdict = runner._evaluate_single_multi_turn_entry(handler, entry_id, result, answers[entry_id], prompt,
                                                               MODEL, category)  # fmt: skip
        else:
            language, fmt = Language.PYTHON, ReturnFormat.PYTHON
            if is_java(category):
                language, fmt = Language.JAVA, ReturnFormat.JAVA
            elif is_js(category):
                language, fmt = Language.JAVASCRIPT, ReturnFormat.JAVASCRIPT
            verdict = runner._evaluate_single_ast_entry(handler, entry_id, result, answers[entry_id], prompt, MODEL,
                                                        category, language, fmt)  # fmt: skip
        sys.stdout.write(json.dumps({"id": entry_id, "valid": bool(verdict["valid"])}) + "\n")
