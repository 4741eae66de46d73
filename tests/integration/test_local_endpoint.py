"""The local endpoint (``python -m emulator.server``) and the switch to a deployed stack.

One server process serves the stack for the whole module, on a free port, with Wait and Retry
100 times shorter and ``FailureProbability=0`` (so a parameter read from the stack differs from
the template default). The suite is then pointed at it exactly as at a stack on AWS:
``AWS_SAM_STACK_NAME`` and ``AWS_ENDPOINT_URL``.
"""

from __future__ import annotations

import inspect
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from emulator.server import EndpointUnavailable, ServedStack
from emulator.stack import ExecutionDidNotFinish
from idempotency.key import compute_idempotency_key
from tests.integration import test_contract_from_outside, test_workflow_contract
from tests.integration.test_records_tool import records
from tools.deployed import ENDPOINT_VARIABLE, STACK_NAME_VARIABLE, DeployedStack, EmulatorOnlyFeature
from tools.template import PROJECT_ROOT, Template

pytestmark = pytest.mark.offline_only(reason="starts its own local endpoint")

STACK_NAME = "local-endpoint-test"
REGION = "us-east-1"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}
# Only a guard against a server that hangs: starting is CPU-bound and a busy machine may take
# minutes, but a failed start ends the process, which the fixture notices at once.
HANG_GUARD_SECONDS = 600.0


@dataclass
class LocalEndpoint:
    """A running ``python -m emulator.server`` and what it wrote to ``--outputs-file``."""

    process: subprocess.Popen[bytes]
    log: Path
    outputs_file: Path
    description: dict[str, Any]

    @property
    def url(self) -> str:
        return self.description["EndpointUrl"]

    def client(self, service: str) -> Any:
        # A service chosen at run time: the stubs type a client per literal service name only.
        return boto3.client(  # type: ignore[call-overload]
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self, timeout: float = HANG_GUARD_SECONDS) -> int:
        """Ctrl-C, then wait for the process to end; its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


def _environment(**extra: str) -> dict[str, str]:
    """This process's environment without anything that would point a child at another stack."""
    inherited = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("PYTEST_", "AWS_")) and name not in (STACK_NAME_VARIABLE, ENDPOINT_VARIABLE)
    }
    return {**inherited, **FAKE_CREDENTIALS, **extra}


def _start_server(directory: Path, *arguments: str) -> tuple[subprocess.Popen[bytes], Path]:
    log = directory / "server.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "emulator.server", *arguments],
            cwd=PROJECT_ROOT,
            env=_environment(),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    return process, log


def start_endpoint(directory: Path, *arguments: str) -> LocalEndpoint:
    """Start ``python -m emulator.server`` with ``arguments`` and wait until it is ready (its ``--outputs-file``
    appears)."""
    outputs_file = directory / "outputs.json"
    process, log = _start_server(directory, *arguments, "--outputs-file", str(outputs_file))
    # Ready when the outputs file appears (written whole); a failed start ends the process.
    deadline = time.monotonic() + HANG_GUARD_SECONDS
    while not outputs_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the server did not start:\n{log.read_text(errors='replace')}")
        time.sleep(0.05)
    return LocalEndpoint(process, log, outputs_file, json.loads(outputs_file.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEndpoint]:
    served = start_endpoint(
        tmp_path_factory.mktemp("endpoint"),
        "--port", "0",
        "--time-scale", "0.01",
        "--stack-name", STACK_NAME,
        "--parameter-overrides", "FailureProbability=0",
    )  # fmt: skip
    try:
        yield served
    finally:
        served.stop()


@pytest.fixture
def client_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any credentials do for the local endpoint; none may come from this machine's configuration."""
    for name in [name for name in os.environ if name.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch.setenv(name, value)


def test_the_server_prints_the_outputs_and_commands_to_paste(endpoint: LocalEndpoint) -> None:
    printed = endpoint.output()
    arn = endpoint.description["Outputs"]["IdempotentWorkflowArn"]
    table = endpoint.description["Outputs"]["IdempotencyTableName"]

    assert endpoint.url.startswith("http://127.0.0.1:")
    assert f"Local AWS endpoint ready: {endpoint.url}" in printed
    assert f"aws stepfunctions start-execution --endpoint-url {endpoint.url} --state-machine-arn {arn}" in printed
    fresh_key = compute_idempotency_key(
        json.loads((PROJECT_ROOT / "events" / "execution_fresh.json").read_text(encoding="utf-8"))
    )
    # Records are <scope>#<key>, the scope being the envelope state machine's name by default.
    fresh_id = f"{arn.rsplit(':', 1)[-1]}#{fresh_key}"
    assert (
        f'aws dynamodb get-item --endpoint-url {endpoint.url} --table-name {table} --key \'{{"id": {{"S": '
        f'"{fresh_id}"}}}}\'' in printed
    )
    assert f"{STACK_NAME_VARIABLE}={STACK_NAME} {ENDPOINT_VARIABLE}={endpoint.url} make pytest" in printed
    assert f'make records ARGS="--endpoint-url {endpoint.url} --stack-name {STACK_NAME} list"' in printed


def test_cloudformation_describes_the_stack_with_its_outputs_and_parameters(
    endpoint: LocalEndpoint, client_credentials: None
) -> None:
    (described,) = endpoint.client("cloudformation").describe_stacks(StackName=STACK_NAME)["Stacks"]
    deployed = DeployedStack(STACK_NAME, endpoint_url=endpoint.url)

    assert {output["OutputKey"]: output["OutputValue"] for output in described["Outputs"]} == endpoint.description[
        "Outputs"
    ]
    # A deployment without AlarmTopicArn or CreateDashboard has every output but the conditional ones.
    assert set(endpoint.description["Outputs"]) == {
        name for name, output in Template.load().body["Outputs"].items() if "Condition" not in output
    }
    assert deployed.outputs == endpoint.description["Outputs"]
    assert deployed.state_machine_arn == endpoint.description["Outputs"]["IdempotentWorkflowArn"]
    assert deployed.table_name == endpoint.description["Outputs"]["IdempotencyTableName"]
    # Read from the stack, not the template: the template's default is 0.5.
    assert deployed.parameters["FailureProbability"] == "0"
    assert deployed.parameters == endpoint.description["Parameters"]


def test_a_fresh_run_then_a_hit_through_a_deployed_stack_leaves_no_record_behind(
    endpoint: LocalEndpoint, client_credentials: None
) -> None:
    execution_input = {"orderId": "local-endpoint", "forceFailure": False}
    key = compute_idempotency_key(execution_input)

    with DeployedStack(STACK_NAME, endpoint_url=endpoint.url) as deployed:
        first = deployed.run(execution_input)
        hit = deployed.run(execution_input)
        record = deployed.get_record(key)
        with pytest.raises(EmulatorOnlyFeature, match="offline_only"):
            deployed.lambdas.invocations("ExampleStepFunction")

    assert (first.status, hit.status) == ("SUCCEEDED", "SUCCEEDED"), (first.cause, hit.cause)
    assert hit.output == first.output
    assert hit.states_entered[-1] == "Return the stored result" and hit.lambda_tasks == 1
    assert record is not None and (record["executionstatus"], record["executionid"]) == ("SUCCESS", first.execution_arn)
    names = [arn.rsplit(":", 1)[1] for arn in (first.execution_arn, hit.execution_arn)]
    assert names[0] != names[1] and all(name.startswith("itest-") for name in names)
    assert _items(endpoint) == []  # the record was deleted when the stack was left


def test_start_execution_names_unnamed_executions_and_refuses_input_that_is_not_json(
    endpoint: LocalEndpoint, client_credentials: None
) -> None:
    sfn = endpoint.client("stepfunctions")
    arn = endpoint.description["Outputs"]["IdempotentWorkflowArn"]

    # Input the workflow rejects before writing any record: the table stays empty for later tests.
    unnamed = [sfn.start_execution(stateMachineArn=arn, input="[]")["executionArn"] for _ in range(2)]
    with pytest.raises(sfn.exceptions.InvalidExecutionInput):
        sfn.start_execution(stateMachineArn=arn, input="{not json")

    names = [execution_arn.rsplit(":", 1)[1] for execution_arn in unnamed]
    assert names[0] != names[1] and all(str(uuid.UUID(name)) == name for name in names)
    with DeployedStack(STACK_NAME, endpoint_url=endpoint.url) as deployed:
        assert [deployed.wait_for(execution_arn).error for execution_arn in unnamed] == [
            "IdempotencyInputNotObjectError"
        ] * 2


def test_polling_is_bounded_and_leaving_stops_what_still_runs(
    endpoint: LocalEndpoint, client_credentials: None
) -> None:
    # A live IN_PROGRESS record held by another execution keeps ours waiting (for up to 300 scaled seconds).
    execution_input = {"orderId": "held-elsewhere", "forceFailure": False}
    with DeployedStack(STACK_NAME, endpoint_url=endpoint.url) as deployed:
        _hold_elsewhere(deployed, execution_input)
        waiter = deployed.start_execution(execution_input)
        with pytest.raises(ExecutionDidNotFinish, match=r"after 0\.5s"):
            deployed.wait_for(waiter, timeout=0.5)

    assert endpoint.client("stepfunctions").describe_execution(executionArn=waiter)["status"] == "ABORTED"
    assert _items(endpoint) == []


def test_the_integration_suite_runs_against_the_endpoint_through_the_switch(
    endpoint: LocalEndpoint, tmp_path: Path
) -> None:
    report = tmp_path / "report.xml"
    modules = [test_contract_from_outside, test_workflow_contract]
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *(inspect.getfile(module) for module in modules),
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            f"--junitxml={report}",
        ],
        cwd=PROJECT_ROOT,
        env=_environment(**{STACK_NAME_VARIABLE: STACK_NAME, ENDPOINT_VARIABLE: endpoint.url}),
        capture_output=True,
        text=True,
        # No wall-clock bound here: the run is CPU-bound, so its length follows the machine's load,
        # and every wait inside it is bounded (DeployedStack.execution_timeout per execution).
    )
    outcomes = _outcomes(report)

    assert completed.returncode == 0, completed.stdout + completed.stderr
    for module in modules:
        expected = {name: "skipped" if _offline_only(module, name) else "passed" for name in _test_names(module)}
        assert {name: outcomes[name][0] for name in expected} == expected
    assert all(
        "offline_only" in message and STACK_NAME_VARIABLE in message
        for outcome, message in outcomes.values()
        if outcome == "skipped"
    )
    assert "passed" in {outcome for outcome, _ in outcomes.values()} and "skipped" in {
        outcome for outcome, _ in outcomes.values()
    }
    assert _items(endpoint) == []  # every record the suite made was deleted at teardown


def test_the_records_tool_finds_the_table_from_the_stack_outputs(
    endpoint: LocalEndpoint, client_credentials: None
) -> None:
    fresh_event = PROJECT_ROOT / "events" / "execution_fresh.json"
    printed = io.StringIO()
    with DeployedStack(STACK_NAME, endpoint_url=endpoint.url) as deployed:
        run = deployed.run(json.loads(fresh_event.read_text(encoding="utf-8")))
        status = records.main(
            ["--endpoint-url", endpoint.url, "--stack-name", STACK_NAME, "show", "--input", str(fresh_event)],
            out=printed,
        )

    assert status == 0
    assert run.execution_arn in printed.getvalue() and "SUCCESS" in printed.getvalue()


def test_the_front_door_is_called_through_the_endpoint_as_the_server_says(
    endpoint: LocalEndpoint, client_credentials: None
) -> None:
    name = endpoint.description["Outputs"]["FrontDoorFunctionName"]
    assert f"aws lambda invoke --endpoint-url {endpoint.url} --function-name {name} " in endpoint.output()
    front_door, sfn = endpoint.client("lambda"), endpoint.client("stepfunctions")
    execution_input = {"orderId": f"front-door-{uuid.uuid4().hex}", "forceFailure": False}

    def call() -> dict[str, Any]:
        response = front_door.invoke(FunctionName=name, Payload=json.dumps(execution_input).encode())
        assert "FunctionError" not in response
        return dict(json.loads(response["Payload"].read()))

    started = call()
    assert started["outcome"] == "STARTED"
    deadline = time.monotonic() + HANG_GUARD_SECONDS
    while (described := sfn.describe_execution(executionArn=started["executionArn"]))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the execution the front door started never ended"
        time.sleep(0.05)
    assert described["status"] == "SUCCEEDED"

    assert call() == {"outcome": "COMPLETED", "key": started["key"], "result": json.loads(described["output"])}


def test_a_port_in_use_is_an_error_not_a_hang() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        with pytest.raises(EndpointUnavailable, match=f"Cannot serve on 127.0.0.1:{port}"), ServedStack(port=port):
            pass


def test_ctrl_c_stops_the_running_executions_then_the_server(endpoint: LocalEndpoint, client_credentials: None) -> None:
    # Last in this module: it stops the module's server.
    execution_input = {"orderId": "running-at-ctrl-c", "forceFailure": False}
    deployed = DeployedStack(STACK_NAME, endpoint_url=endpoint.url)
    _hold_elsewhere(deployed, execution_input)
    deployed.start_execution(execution_input)

    status = endpoint.stop()

    printed = endpoint.output()
    assert status == 0, printed
    assert "1 execution(s) still running will be stopped" in printed
    assert printed.rstrip().endswith("Stopped.")
    assert '"_aws"' not in printed  # the module's executions printed no metric JSON for people to wade through
    assert not endpoint.outputs_file.exists()


# --------------------------------------------------------------------------- helpers
def _hold_elsewhere(deployed: DeployedStack, execution_input: Any) -> None:
    """Write a live IN_PROGRESS record for ``execution_input`` held by an execution that never ends."""
    now = int(time.time())
    deployed.dynamodb.put_item(
        TableName=deployed.table_name,
        Item={
            "id": {"S": deployed.record_id(compute_idempotency_key(execution_input))},
            "executionstatus": {"S": "IN_PROGRESS"},
            "executionid": {"S": "arn:aws:states:us-east-1:123456789012:execution:elsewhere:holder"},
            "starttime": {"S": "2026-01-01T00:00:00Z"},
            "ttl": {"N": str(now + 3600)},
            "leaseexpiry": {"N": str(now + 3600)},
        },
    )


def _items(endpoint: LocalEndpoint) -> list[dict[str, Any]]:
    return endpoint.client("dynamodb").scan(TableName=endpoint.description["Outputs"]["IdempotencyTableName"])["Items"]


def _test_names(module: Any) -> list[str]:
    return [name for name in vars(module) if name.startswith("test_") and callable(getattr(module, name))]


def _offline_only(module: Any, name: str) -> bool:
    marks = [*getattr(module, "pytestmark", []), *getattr(getattr(module, name), "pytestmark", [])]
    return any(mark.name == "offline_only" for mark in marks)


def _outcomes(report: Path) -> dict[str, tuple[str, str]]:
    """Test name -> (passed | skipped | failed, message), from a JUnit XML report.

    A parametrized test's cases are named ``test[case]``; they share their function's markers,
    so they are kept under the function's name (the last case's outcome, any failure wins)."""
    outcomes: dict[str, tuple[str, str]] = {}
    for case in ElementTree.parse(report).iter("testcase"):
        problem = case.find("failure") if case.find("failure") is not None else case.find("error")
        skipped = case.find("skipped")
        name = case.get("name", "").split("[", 1)[0]
        if outcomes.get(name, ("",))[0] == "failed":
            continue
        if problem is not None:
            outcomes[name] = ("failed", problem.get("message", ""))
        elif skipped is not None:
            outcomes[name] = ("skipped", skipped.get("message", ""))
        else:
            outcomes[name] = ("passed", "")
    return outcomes
