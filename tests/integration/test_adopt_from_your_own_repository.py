"""Adopting the envelope from a repository of one's own, exactly as the README says, and packaging every template.

The user's test writes, in a temporary folder, an app of its own (a Standard ``OrdersWorkflow`` of
two Lambda tasks), copies ``envelope/`` into it and nests it with the snippet taken from the
README, then does what the README tells a newcomer: ``sam validate --lint``, ``sam build``, ``sam
package``, ``make serve TEMPLATE=...`` (its Python twin), executions through the served endpoint,
and the records tool. ``sam package`` uploads into a local S3 (moto's server on a free port, with
``AWS_ENDPOINT_URL``); ``sam build`` needs the functions' runtime, found by ``tools.runtimes``.
Slow tier: each build installs the functions' requirements.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypedDict

import boto3
import pytest
import yaml
from moto.server import ThreadedMotoServer

from tests.integration.test_local_endpoint import FAKE_CREDENTIALS, LocalEndpoint, _environment, start_endpoint
from tools.executions import FINISHED
from tools.runtimes import runtime_bin_dir
from tools.template import PROJECT_ROOT, Template

pytestmark = [pytest.mark.slow, pytest.mark.offline_only(reason="builds, packages and serves apps of its own")]

RUNTIME = "python3.13"
SAM = Path(sys.executable).parent / "sam"
BUCKET = "sam-artifacts"
STACK_NAME = "orders-app"
# Every template in the repository that a user may build and deploy.
REPOSITORY_TEMPLATES = [
    "template.yaml",
    "envelope/template.yaml",
    *sorted(str(path.relative_to(PROJECT_ROOT)) for path in PROJECT_ROOT.glob("examples/*/template.yaml")),
]
# What sam package must have replaced by an upload: a local path left in one of these cannot deploy.
ARTIFACT_PROPERTIES = ("CodeUri", "ContentUri", "DefinitionUri", "Location", "LicenseUrl", "ReadmeUrl")
# How long one sam command may take before the test calls it hung (installing requirements over the network).
SAM_TIMEOUT_SECONDS = 900

ORDERS_ASL = {
    "Comment": "Reserve the stock, then charge the payment.",
    "StartAt": "Reserve the stock",
    "States": {
        "Reserve the stock": {
            "Type": "Task",
            "Resource": "${ReserveStockFunctionArn}",
            "ResultPath": "$.stock",
            "Next": "Charge the payment",
        },
        "Charge the payment": {
            "Type": "Task",
            "Resource": "${ChargePaymentFunctionArn}",
            "ResultPath": "$.payment",
            "End": True,
        },
    },
}
HANDLERS = {
    "reserve_stock": 'def lambda_handler(event, context):\n    return {"reserved": event["items"]}\n',
    "charge_payment": 'def lambda_handler(event, context):\n    return {"charged": event["amount"]}\n',
}
APP_TEMPLATE_HEAD = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Description: Orders, made idempotent by the envelope nested as the README says.

Globals:
  Function:
    Runtime: python3.13
    Architectures: [arm64]
    Timeout: 10

Resources:
  ReserveStockFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/reserve_stock/
      Handler: app.lambda_handler
  ChargePaymentFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/charge_payment/
      Handler: app.lambda_handler
  OrdersWorkflow:
    Type: AWS::Serverless::StateMachine
    Properties:
      Type: STANDARD
      DefinitionUri: statemachine/orders.asl.json
      DefinitionSubstitutions:
        ReserveStockFunctionArn: !GetAtt ReserveStockFunction.Arn
        ChargePaymentFunctionArn: !GetAtt ChargePaymentFunction.Arn
      Policies:
        - LambdaInvokePolicy: {FunctionName: !Ref ReserveStockFunction}
        - LambdaInvokePolicy: {FunctionName: !Ref ChargePaymentFunction}
"""
APP_TEMPLATE_OUTPUTS = """
Outputs:
  OrdersWorkflowArn:
    Value: !Ref OrdersWorkflow
  IdempotentOrdersArn:
    Value: !GetAtt IdempotentOrders.Outputs.IdempotentWorkflowArn
"""


def readme_nesting_snippet() -> str:
    """The YAML the README tells a user to add to their template's Resources, as written there."""
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Make your workflow idempotent") :]
    match = re.search(r"nest it in your workflow's stack.*?```yaml\n(.*?)\n\s*```", section, re.DOTALL)
    assert match, "the README's 'Make your workflow idempotent' section has no nesting snippet"
    # The snippet sits in a list item, two spaces in: without them it is indented as under Resources:.
    return textwrap.dedent(match.group(1))


def write_users_app(folder: Path) -> Path:
    """An app of the user's own, with ``envelope/`` copied in and nested as the README says; its template."""
    for name, source in HANDLERS.items():
        (folder / "functions" / name).mkdir(parents=True)
        (folder / "functions" / name / "app.py").write_text(source, encoding="utf-8")
    (folder / "statemachine").mkdir()
    (folder / "statemachine" / "orders.asl.json").write_text(json.dumps(ORDERS_ASL, indent=2), encoding="utf-8")
    # What the README says to take: the envelope/ folder, whole (the files a clone has, no caches).
    shutil.copytree(
        PROJECT_ROOT / "envelope",
        folder / "envelope",
        ignore=shutil.ignore_patterns("__pycache__", ".mypy_cache", "*.pyc"),
    )
    template = folder / "template.yaml"
    template.write_text(APP_TEMPLATE_HEAD + readme_nesting_snippet() + "\n" + APP_TEMPLATE_OUTPUTS, encoding="utf-8")
    return template


@pytest.fixture(scope="module")
def sam_environment() -> dict[str, str]:
    """sam's environment: the functions' runtime on PATH, no telemetry, fake credentials."""
    path = f"{runtime_bin_dir(RUNTIME)}{os.pathsep}{os.environ.get('PATH', '')}"
    return _environment(PATH=path, SAM_CLI_TELEMETRY="0")


@pytest.fixture(scope="module")
def local_s3() -> Iterator[str]:
    """moto's server on a free port, with the artifacts bucket: where sam package uploads."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        url = f"http://127.0.0.1:{server.get_host_and_port()[1]}"
        boto3.client("s3", endpoint_url=url, **_credentials()).create_bucket(Bucket=BUCKET)
        yield url
    finally:
        server.stop()


class _Credentials(TypedDict):
    region_name: str
    aws_access_key_id: str
    aws_secret_access_key: str


def _credentials() -> _Credentials:
    return {
        "region_name": FAKE_CREDENTIALS["AWS_REGION"],
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }


def sam(environment: dict[str, str], *arguments: str, cwd: Path) -> str:
    completed = subprocess.run(
        [str(SAM), *arguments],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=SAM_TIMEOUT_SECONDS,
        check=False,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, f"sam {' '.join(arguments)} failed ({completed.returncode}):\n{output}"
    return output


def build_and_package(template: Path, work: Path, environment: dict[str, str], s3_url: str) -> dict[str, Any]:
    """``sam build`` then ``sam package`` into the local S3; the packaged template."""
    build_dir = work / "build"
    sam(
        environment,
        "build",
        "--template",
        str(template),
        "--build-dir",
        str(build_dir),
        "--region",
        "us-east-1",
        cwd=template.parent,
    )
    assert_built_with_all_code(Template.load(build_dir / "template.yaml"))
    packaged = work / "packaged.yaml"
    sam(
        {**environment, "AWS_ENDPOINT_URL": s3_url},
        "package", "--template-file", str(build_dir / "template.yaml"), "--s3-bucket", BUCKET,
        "--output-template-file", str(packaged), "--region", "us-east-1",
        cwd=work,
    )  # fmt: skip
    return Template.load(packaged).body


def assert_built_with_all_code(built: Template) -> None:
    """Every function of a built template (nested applications' included) has its handler, every layer its code."""
    for logical_id, resource in built.resources.items():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function":
            module = properties["Handler"].rpartition(".")[0].replace(".", "/")
            assert (built.root / properties["CodeUri"] / f"{module}.py").is_file(), (
                f"{built.path}: {logical_id} was built without its code"
            )
        elif resource["Type"] == "AWS::Serverless::LayerVersion":
            content = built.root / properties["ContentUri"]
            assert any(content.rglob("*.py")), f"{built.path}: layer {logical_id} was built without its code"
        elif resource["Type"] == "AWS::Serverless::Application":
            assert_built_with_all_code(Template.load(built.root / properties["Location"]))


def local_artifact_paths(body: Any, s3_url: str) -> list[str]:
    """Artifact properties of a packaged template (and its nested templates, fetched from S3) still naming a local
    path."""
    found: list[str] = []

    def visit(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for name, value in node.items():
                if name in ARTIFACT_PROPERTIES and isinstance(value, str):
                    if not value.startswith(("s3://", "http://", "https://")):
                        found.append(f"{path}.{name}: {value}")
                    elif name == "Location" and value.startswith(s3_url):
                        bucket, key = value.removeprefix(s3_url + "/").split("/", 1)
                        nested = boto3.client("s3", endpoint_url=s3_url, **_credentials()).get_object(
                            Bucket=bucket, Key=key
                        )
                        visit(
                            yaml.safe_load(re.sub(r"!(\w+)", r"\1", nested["Body"].read().decode())), f"{path}.{name}->"
                        )
                else:
                    visit(value, f"{path}.{name}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                visit(value, f"{path}[{index}]")

    visit(body, "")
    return found


@pytest.mark.parametrize("relative", REPOSITORY_TEMPLATES)
def test_every_template_in_the_repository_builds_with_all_its_code_and_packages(
    relative: str, tmp_path: Path, sam_environment: dict[str, str], local_s3: str
) -> None:
    packaged = build_and_package(PROJECT_ROOT / relative, tmp_path, sam_environment, local_s3)

    assert local_artifact_paths(packaged, local_s3) == []


def start(sfn: Any, arn: str, execution_input: dict[str, Any]) -> str:
    return str(sfn.start_execution(stateMachineArn=arn, input=json.dumps(execution_input))["executionArn"])


def wait(sfn: Any, execution_arn: str, timeout: float = 300.0) -> dict[str, Any]:
    event = threading.Event()
    while (description := sfn.describe_execution(executionArn=execution_arn))["status"] not in FINISHED:
        if not timeout > 0:
            raise AssertionError(f"{execution_arn} still running")
        event.wait(0.05)
        timeout -= 0.05
    return dict(description)


def records_tool(endpoint_url: str, *arguments: str) -> str:
    """``scripts/records.py --endpoint-url URL --stack-name orders-app ...``, run from the repository root; what it
    printed."""
    completed = subprocess.run(
        [sys.executable, "scripts/records.py", "--endpoint-url", endpoint_url, "--stack-name", STACK_NAME, *arguments],
        cwd=PROJECT_ROOT, env=_environment(), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout


def executions_of(sfn: Any, arn: str) -> list[str]:
    return [execution["executionArn"] for execution in sfn.list_executions(stateMachineArn=arn)["executions"]]


def test_a_user_nests_the_envelope_in_their_own_app_builds_packages_serves_and_runs_it_as_the_readme_says(
    tmp_path: Path, sam_environment: dict[str, str], local_s3: str
) -> None:
    app = tmp_path / "orders-app"
    app.mkdir()
    template = write_users_app(app)

    sam(sam_environment, "validate", "--lint", "--template", str(template), "--region", "us-east-1", cwd=app)
    packaged = build_and_package(template, tmp_path, sam_environment, local_s3)
    assert local_artifact_paths(packaged, local_s3) == []

    served: LocalEndpoint = start_endpoint(
        tmp_path, "--template", str(template), "--port", "0", "--time-scale", "0.01", "--stack-name", STACK_NAME
    )
    try:
        envelope_outputs = served.description["NestedStacks"]["IdempotentOrders"]["Outputs"]
        envelope_arn = envelope_outputs["IdempotentWorkflowArn"]
        assert served.description["Outputs"]["IdempotentOrdersArn"] == envelope_arn
        assert re.search(rf"IdempotentOrders\.IdempotentWorkflowArn +{re.escape(envelope_arn)}", served.output())
        sfn = served.client("stepfunctions")
        orders_arn = served.description["Outputs"]["OrdersWorkflowArn"]

        order = {"orderId": "o-1", "items": 2, "amount": 10}
        fresh = wait(sfn, start(sfn, envelope_arn, order))
        assert fresh["status"] == "SUCCEEDED", fresh
        assert json.loads(fresh["output"])["payment"] == {"charged": 10}
        assert len(executions_of(sfn, orders_arn)) == 1

        hit = wait(sfn, start(sfn, envelope_arn, order))
        assert hit["status"] == "SUCCEEDED"
        assert json.loads(hit["output"]) == json.loads(fresh["output"])
        assert len(executions_of(sfn, orders_arn)) == 1, "a repeat started the wrapped workflow again"

        duplicate = {"orderId": "o-2", "items": 1, "amount": 5}
        both = [start(sfn, envelope_arn, duplicate) for _ in range(2)]
        outcomes = [wait(sfn, arn) for arn in both]
        assert [outcome["status"] for outcome in outcomes] == ["SUCCEEDED", "SUCCEEDED"]
        assert json.loads(outcomes[0]["output"]) == json.loads(outcomes[1]["output"])
        assert len(executions_of(sfn, orders_arn)) == 2, "two concurrent duplicates started the wrapped workflow twice"

        # The records tool as `make records ARGS=...` runs it, on the app's stack: it finds the nested
        # envelope and keys an input with the deployment's own expression (orderId).
        listed = records_tool(served.url, "list")
        assert sum(" SUCCESS " in line for line in listed.splitlines()) == 2, listed
        order_file = tmp_path / "order.json"
        order_file.write_text(json.dumps(order), encoding="utf-8")
        shown = records_tool(served.url, "show", "--input", str(order_file))
        record = json.loads(shown[: shown.rindex("}") + 1])["record"]
        assert record["executionstatus"] == "SUCCESS"
        assert record["executionid"] == fresh["executionArn"]
    finally:
        assert served.stop() == 0, served.output()
