"""Following the README's "Put your own steps in" recipe leaves ``make test``'s envelope tests green.

The recipe (docs/examples.md) is followed on a copy of the project, as a user would follow it: a
sixth step (a function of its own) is added to **Run the business steps**, the function, its
policy and its substitution to ``template.yaml``, and the diagram is redrawn. The envelope's unit
and integration tests then run on that copy: they read the business steps from the template and
the ASL, so they must pass however many steps there are and whatever the steps return.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tools.template import PROJECT_ROOT

pytestmark = pytest.mark.slow

NEW_FUNCTION = "ShippingLabelFunction"
NEW_FUNCTION_CODE = '''"""A business step of the user's own: makes the order's shipping label."""

from __future__ import annotations

from typing import Any


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    order = event["input"]
    order_id = order.get("orderId", "?") if isinstance(order, dict) else "?"
    return {"label": f"Label for order {order_id}"}
'''

NEW_BRANCH = """        {
          "StartAt": "Make the shipping label",
          "States": {
            "Make the shipping label": {
              "Type": "Task",
              "Resource": "arn:aws:states:::lambda:invoke",
              "Parameters": {
                "FunctionName": "${ShippingLabelFunctionArn}",
                "Payload": {
                  "input.$": "$"
                }
              },
              "OutputPath": "$.Payload",
              "End": true
            }
          }
        }
"""

NEW_TEMPLATE_FUNCTION = """  ShippingLabelFunction:
    Type: AWS::Serverless::Function
    Properties:
      Description: Makes the order's shipping label.
      CodeUri: functions/shipping_label/
      Handler: app.lambda_handler

"""

# The envelope's test modules: every module but the examples' own and this one.
EXAMPLE_MODULES = ("test_user_registration.py", "test_sensor_file.py", "test_recipe.py")


def replace_once(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{path.name}: expected {old!r} once"
    path.write_text(text.replace(old, new), encoding="utf-8")


def copy_project(destination: Path) -> None:
    """The project's tracked files, as they are in the work tree, copied under ``destination``."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=PROJECT_ROOT, capture_output=True, check=True)
    for name in filter(None, listed.stdout.decode("utf-8").split("\0")):
        source = PROJECT_ROOT / name
        if source.is_file() and not source.is_symlink():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def follow_the_recipe(root: Path) -> None:
    """docs/examples.md, "Put your own steps in", step by step: a sixth step of the user's own."""
    # 1. A branch of its own in "Run the business steps", and its output in the ResultSelector.
    asl = root / "statemachine" / "idempotent_workflow.asl.json"
    replace_once(
        asl,
        '        }\n      ],\n      "ResultSelector": {',
        "        },\n" + NEW_BRANCH + '      ],\n      "ResultSelector": {',
    )
    replace_once(
        asl, '"randomFailureFunc.$": "$[4]"\n', '"randomFailureFunc.$": "$[4]",\n        "shippingLabel.$": "$[5]"\n'
    )
    # 2. The function in template.yaml, its ARN through DefinitionSubstitutions, its LambdaInvokePolicy.
    function_folder = root / "functions" / "shipping_label"
    function_folder.mkdir()
    (function_folder / "app.py").write_text(NEW_FUNCTION_CODE, encoding="utf-8")
    template = root / "template.yaml"
    replace_once(template, "  IdempotentWorkflowLogs:\n", NEW_TEMPLATE_FUNCTION + "  IdempotentWorkflowLogs:\n")
    replace_once(
        template,
        "        RandomFailureFunctionArn: !GetAtt RandomFailureFunction.Arn\n",
        "        RandomFailureFunctionArn: !GetAtt RandomFailureFunction.Arn\n"
        f"        ShippingLabelFunctionArn: !GetAtt {NEW_FUNCTION}.Arn\n",
    )
    replace_once(
        template,
        "            FunctionName: !Ref RandomFailureFunction\n",
        "            FunctionName: !Ref RandomFailureFunction\n"
        f"        - LambdaInvokePolicy:\n            FunctionName: !Ref {NEW_FUNCTION}\n",
    )
    # 3. The key: the orders are keyed by their orderId (the default, the whole input, is kept here;
    #    the tests choose their own keys). 4. Redraw the diagram.
    subprocess.run([sys.executable, "scripts/asl_diagram.py", "--write"], cwd=root, check=True, capture_output=True)


def test_the_envelope_tests_pass_on_a_project_that_followed_the_recipe(tmp_path: Path) -> None:
    if shutil.which("git") is None or not (PROJECT_ROOT / ".git").exists():
        pytest.skip("needs the project's git work tree to copy its tracked files")
    root = tmp_path / "project"
    copy_project(root)
    follow_the_recipe(root)
    assert "Make the shipping label" in (root / "README.md").read_text(encoding="utf-8")

    modules = sorted(
        str(path.relative_to(root))
        for folder in (root / "tests" / "unit", root / "tests" / "integration")
        for path in folder.glob("test_*.py")
        if path.name not in EXAMPLE_MODULES
    )
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith(("PYTEST_", "AWS_SAM_STACK"))
    }
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-m",
            "not slow",
            "-n",
            "2",
            "--dist",
            "loadfile",
            "-p",
            "no:cacheprovider",
            *modules,
        ],
        cwd=root,
        env=environment,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert run.returncode == 0, (
        f"the envelope's tests failed after the recipe:\n{run.stdout[-6000:]}\n{run.stderr[-2000:]}"
    )
