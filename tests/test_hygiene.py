"""Static checks of the pipeline's code: no pickle loading, no remote code."""

import re

from helpers import REPO

FORBIDDEN = [
    (r"\btorch\.load\s*\(", "torch.load unpickles; use safetensors"),
    (r"\bpickle\.loads?\s*\(", "never unpickle"),
    (r"\bjoblib\.load\s*\(", "never unpickle"),
    (r"trust_remote_code\s*=\s*True", "no remote code runs"),
    (r"use_safetensors\s*=\s*False", "safetensors only"),
    (r"weights_only\s*=\s*False", "never unpickle"),
]


def test_no_pickle_loading_and_no_remote_code():
    sources = [p for d in ("workflow", "benchmarks") for p in (REPO / d).rglob("*.py")]
    sources += list((REPO / "workflow" / "rules").glob("*.smk")) + [REPO / "Snakefile"]
    assert len(sources) > 20
    problems = []
    for path in sources:
        for n, line in enumerate(path.read_text().splitlines(), 1):
            for pattern, why in FORBIDDEN:
                if re.search(pattern, line):
                    problems.append(f"{path.relative_to(REPO)}:{n}: {why}: {line.strip()}")
    assert problems == []
