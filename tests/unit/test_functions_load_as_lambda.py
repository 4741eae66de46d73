"""Each function of the real templates loads as Lambda loads it.

Lambda puts the function's own folder (``CodeUri``) on the path, then each layer's content, and
calls the handler the template names (``Handler: module.function``). The other tests import the
layer by name (pytest's ``pythonpath``) and call the functions' code directly; this is the one test
that the templates' import roots and handler strings resolve to that code, each function in
isolation (its own copy of the layer, as each Lambda process has), with the environment its
template gives it.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Any

import pytest

from emulator.stack import FUNCTION, QUIET_FUNCTIONS, STATE_MACHINE
from tools.layer_import import load_modules
from tools.template import PROJECT_ROOT, Resolver, Template

REGION = "us-east-1"
ACCOUNT = "123456789012"
# The project's templates: the original pattern, the reusable envelope and each example's app.
TEMPLATES = [
    PROJECT_ROOT / "template.yaml",
    PROJECT_ROOT / "envelope" / "template.yaml",
    *sorted(PROJECT_ROOT.glob("examples/*/template.yaml")),
]


def _functions() -> list[Any]:
    """Every function of every template, as ``(template, logical id)`` cases."""
    templates = [Template.load(path) for path in TEMPLATES]
    return [
        pytest.param(template, logical_id, id=f"{template.path.relative_to(PROJECT_ROOT)}:{logical_id}")
        for template in templates
        for logical_id in template.resources_of_type(FUNCTION)
    ]


def lambda_environment(template: Template, logical_id: str) -> dict[str, str]:
    """The variables Lambda would give the function: its template's (``Globals`` merged in), resolved with
    the parameters' defaults (a placeholder for a parameter without one) and the resources' names."""
    parameters = {
        name: str(spec.get("Default", f"{name}-given-at-deploy"))
        for name, spec in template.body.get("Parameters", {}).items()
    }
    refs = {
        name: f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}"
        if resource["Type"] == STATE_MACHINE
        else f"{name}-offline"
        for name, resource in template.resources.items()
    }
    pseudo = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::StackName": "offline", "AWS::Partition": "aws"}
    variables = template.function_properties(logical_id).get("Environment", {}).get("Variables", {})
    resolved = Resolver(parameters=parameters, pseudo=pseudo, refs=refs).resolve(variables)
    return {"AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION, **QUIET_FUNCTIONS} | {
        name: str(value) for name, value in resolved.items()
    }


def layer_packages(content: Path) -> list[str]:
    return sorted(path.name for path in content.iterdir() if (path / "__init__.py").is_file())


@pytest.mark.parametrize(("template", "logical_id"), _functions())
def test_each_function_loads_from_its_folder_and_its_layers_and_its_handler_is_the_one_the_template_names(
    template: Template, logical_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in lambda_environment(template, logical_id).items():
        monkeypatch.setenv(name, value)
    code_uri, *layers = template.import_roots(logical_id)
    module_name, _, function_name = template.function_properties(logical_id)["Handler"].rpartition(".")
    packages = [(layer, package) for layer in layers for package in layer_packages(layer)]

    module, *loaded = load_modules([code_uri, *layers], module_name, *(package for _, package in packages))

    handler = getattr(module, function_name)
    assert callable(handler) and list(inspect.signature(handler).parameters)[:2] == ["event", "context"]
    assert Path(inspect.getfile(inspect.unwrap(handler))) == code_uri / f"{module_name.replace('.', '/')}.py"
    for (layer, package), imported in zip(packages, loaded, strict=True):
        assert Path(inspect.getfile(imported)).is_relative_to(layer), (package, imported)
        # Its own copy, as each Lambda process has: none of it stays behind in this process.
        assert sys.modules.get(package) is not imported
