"""Type-check with mypy (``make lint``): the functions, the layer, the tools, emulator, scripts, bench and tests.

Each function is checked from its own folder, as Lambda imports it, with its layers on the
search path: the import roots come from ``template.yaml`` and each example's template
(``examples/*/template.yaml``, via ``Template.import_roots``), so a new function, layer or example
is checked without editing this script. The tests import the layer by name (pytest's ``pythonpath``),
so they are checked with the layer's content on the search path. Settings are in ``pyproject.toml``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

if str(Path(__file__).resolve().parent.parent) not in sys.path:  # run as a file, not only with -m
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tools.template import PROJECT_ROOT, Template

CONFIG = PROJECT_ROOT / "pyproject.toml"
# One cache for every run: the standard library's and boto3's stubs are analysed once, not once per
# function, and no cache lands in a function's folder (which sam build would package).
CACHE = PROJECT_ROOT / ".mypy_cache"


def mypy(targets: list[str], cwd: Path, search_path: list[Path]) -> int:
    environment = {**os.environ, "MYPYPATH": os.pathsep.join(str(path) for path in search_path)}
    command = [sys.executable, "-m", "mypy", "--config-file", str(CONFIG), "--cache-dir", str(CACHE), *targets]
    print(f"mypy {' '.join(targets)}  (in {cwd.relative_to(PROJECT_ROOT) or '.'})", flush=True)
    return subprocess.run(command, cwd=cwd, env=environment, check=False).returncode


def main() -> int:
    template = Template.load()
    failures = 0
    checked: set[tuple[Path, ...]] = set()
    examples = [Template.load(path) for path in sorted(PROJECT_ROOT.glob("examples/*/template.yaml"))]
    functions = [
        (logical_id, owner)
        for owner in (template, *examples)
        for logical_id in owner.resources_of_type("AWS::Serverless::Function")
    ]
    for logical_id, owner in functions:
        code_uri, *layers = owner.import_roots(logical_id)
        module = owner.function_properties(logical_id)["Handler"].rpartition(".")[0]
        if (code_uri, *layers) in checked:
            continue
        checked.add((code_uri, *layers))
        failures += mypy([f"{module.replace('.', '/')}.py"], cwd=code_uri, search_path=layers) != 0
    layer_contents = [
        template.root / layer["Properties"]["ContentUri"]
        for layer in template.resources_of_type("AWS::Serverless::LayerVersion").values()
    ]
    for content in layer_contents:
        packages = sorted(path.name for path in content.iterdir() if (path / "__init__.py").exists())
        failures += mypy(packages, cwd=content, search_path=[]) != 0
    failures += mypy(["tools", "emulator", "scripts", "bench"], cwd=PROJECT_ROOT, search_path=[]) != 0
    tests = ["tests", *sorted(str(path.relative_to(PROJECT_ROOT)) for path in PROJECT_ROOT.glob("examples/*/tests"))]
    failures += mypy([*tests, "examples/conftest.py"], cwd=PROJECT_ROOT, search_path=layer_contents) != 0
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
