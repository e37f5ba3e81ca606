"""Our BFCL checker and BFCL's own give the same verdict on every case from the real data."""

from __future__ import annotations

from collections import Counter

import pytest

from inftool_env.rewards.bfcl_ast import check_ast
from tests.rewards.cases import AST_CATEGORIES, UNDERSCORE_MODEL, agreement_cases
from tests.rewards.official import official_python, official_verdicts

pytestmark = pytest.mark.skipif(
    not official_python().exists(),
    reason=f"BFCL's own checker is not installed at {official_python()} (`make test` builds .venv-bfcl)",
)


def test_agreement_with_the_official_checker_on_every_ast_entry():
    cases = list(agreement_cases())
    official, _ = official_verdicts(cases)
    disagreements, crashes = [], []
    for case in cases:
        theirs = official[case["id"]]
        if theirs["valid"] is None:
            crashes.append(f"{case['id']}: {theirs['error_type']}")
            continue
        ours = check_ast(case["docs"], case["output"], case["possible"], case["category"],
                         underscore_names=case["model"] == UNDERSCORE_MODEL, language=case["language"])  # fmt: skip
        if ours.valid != theirs["valid"]:
            official_says = f"official {theirs['valid']} ({theirs['error_type']})"
            disagreements.append(f"{case['id']}: ours {ours.valid} ({ours.error_type}), {official_says}")
    kinds = Counter(c["id"].split("|")[1].split(":")[0] for c in cases)
    print(f"\n{len(cases)} cases over {len(AST_CATEGORIES)} categories: {dict(kinds)}")
    print(f"{len(disagreements)} disagreements, {len(crashes)} official crashes")
    for line in disagreements + crashes:
        print("  " + line)
    assert len(cases) > 25_000
    assert not disagreements
    assert not crashes
