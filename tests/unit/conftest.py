"""Fixtures for the unit tests: the template, moto's DynamoDB, and the functions' modules loaded as Lambda loads them.

The layer needs no fixture: the tests import it by name (``from idempotency import record``), as
its functions do, from the folder pytest's ``pythonpath`` holds. A function's module is found
through ``template.yaml`` here, so a function that moves changes this file, not the tests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from emulator.adapters import LambdaContext, load_module
from emulator.stack import QUIET_FUNCTIONS
from tools.template import Resolver, Template

# The table the ``dynamodb`` fixture creates, and the name the template environment gives it.
RECORDS_TABLE = "records"

FunctionLoader = Callable[..., ModuleType]


@pytest.fixture(scope="session")
def template() -> Template:
    """The project's real ``template.yaml``."""
    return Template.load()


@pytest.fixture(scope="session")
def template_environment(template: Template) -> dict[str, str]:
    """The variables ``Globals.Function.Environment`` gives every function, with the parameters' defaults.

    ``IdempotencyTable`` resolves to ``RECORDS_TABLE``, the table of the ``dynamodb`` fixture.
    """
    resolver = Resolver(parameters=template.parameter_values(), pseudo={}, refs={"IdempotencyTable": RECORDS_TABLE})
    variables = template.body["Globals"]["Function"]["Environment"]["Variables"]
    return {name: str(value) for name, value in resolver.resolve(variables).items()}


@pytest.fixture
def load_function(template: Template, monkeypatch: pytest.MonkeyPatch) -> FunctionLoader:
    """Import a template function's handler module, with ``environment`` set first (a module may read it on import,
    the envelope's on their first call).

    Usage: ``app = load_function("RandomFailureFunction", {"FAILURE_PROBABILITY": "1"})``. The
    variables stay set for the rest of the test, as a Lambda function's environment does.
    """

    def load(logical_id: str, environment: Mapping[str, str] | None = None) -> ModuleType:
        for name, value in {**QUIET_FUNCTIONS, **(environment or {})}.items():
            monkeypatch.setenv(name, value)
        module_name = template.function_properties(logical_id)["Handler"].rpartition(".")[0]
        return load_module(template.import_roots(logical_id), module_name)

    return load


@pytest.fixture
def lambda_context() -> LambdaContext:
    """A Lambda context object, as the emulator gives handlers."""
    return LambdaContext(
        function_name="unit-test-function",
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:unit-test-function",
        memory_limit_in_mb=256,
        timeout_seconds=10,
    )


@pytest.fixture
def aws_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and a region, so boto3 clients made under ``mock_aws`` never look for real ones."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def write_template(tmp_path: Path) -> Callable[[str], Template]:
    """Write a small SAM template into the test's folder and load it (for cases the real one has not)."""

    def write(text: str) -> Template:
        path = tmp_path / "template.yaml"
        path.write_text(text, encoding="utf-8")
        return Template.load(path)

    return write


@pytest.fixture
def dynamodb(aws_credentials: None) -> Iterator[Any]:
    """A DynamoDB client on moto with the envelope's table (``RECORDS_TABLE``: partition key ``id``, type S)."""
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=RECORDS_TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


@pytest.fixture
def dynamodb_calls(dynamodb: Any) -> list[tuple[str, dict[str, Any]]]:
    """Every request the ``dynamodb`` client makes from now on: (operation name, parameters)."""
    calls: list[tuple[str, dict[str, Any]]] = []

    def record(model: Any, params: dict[str, Any], **_: Any) -> None:
        calls.append((model.name, params))

    dynamodb.meta.events.register("provide-client-params.dynamodb.*", record)
    return calls
