"""The conda environments named by the rules ask for the same packages as pyproject.toml."""

import re

import tomllib
import yaml
from helpers import REPO


def _name(req: str) -> str:
    return re.split(r"[<>=!~ \[]", req, maxsplit=1)[0].lower().replace("_", "-")


def test_env_pip_lines_match_pyproject():
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    pinned = {_name(d): d.replace(" ", "") for d in deps}
    rules_text = "".join(p.read_text() for p in (REPO / "workflow" / "rules").glob("*.smk"))
    for env in sorted((REPO / "envs").glob("*.yaml")):
        spec = yaml.safe_load(env.read_text())
        assert f'envs/{env.name}"' in rules_text, f"{env.name} is not used by any rule"
        pip = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict) and "pip" in d)
        for req in pip:
            assert _name(req) in pinned, f"{env.name}: {req} is not a dependency in pyproject.toml"
            assert req.replace(" ", "") == pinned[_name(req)], f"{env.name}: {req} != pyproject {pinned[_name(req)]}"
