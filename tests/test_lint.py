"""The code as Snakemake's best-practice workflows keep it: `snakemake --lint`, `snakefmt --check` and `ruff check`
clean (settings in pyproject.toml). Runs wherever the README's test command runs, so CI runs it."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO


def run(*cmd):
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)


def test_snakemake_lint_is_clean():
    proc = run(sys.executable, "-m", "snakemake", "--lint", "--cores", "1")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and "Lints for" not in out, out[-4000:]


@pytest.mark.parametrize("tool", ["snakefmt", "ruff"])
def test_formatter_and_linter_are_clean(tool):
    exe = shutil.which(tool, path=str(Path(sys.executable).parent)) or shutil.which(tool)
    if exe is None:
        pytest.skip(f"{tool} is not installed (pip install -e '.[test]' brings it)")
    cmd = [exe, "--check", "Snakefile", "workflow/rules"] if tool == "snakefmt" else \
        [exe, "check", "workflow", "tests", "benchmarks", "data"]
    proc = run(*cmd)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]


@pytest.mark.parametrize("hook", ["onstart", "onsuccess", "onerror"])
def test_each_hook_is_defined_once(hook):
    # Snakemake keeps only the last handler it reads: a second `onstart` in an included file silently drops the first
    files = [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]
    found = [f.name for f in files for line in f.read_text().splitlines() if line.startswith(f"{hook}:")]
    assert len(found) <= 1, found
