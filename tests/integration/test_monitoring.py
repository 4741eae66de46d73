"""The alarms and dashboard deployed with the stack, offline.

Without ``AlarmTopicArn`` and ``CreateDashboard`` the deployment has nothing more. With them, moto
holds every alarm and the dashboard as CloudFormation would create them, and each must watch what
exists: the metrics the deployed functions really print (embedded metric format, captured from
their output) and AWS's metrics under the deployed resources' names.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emulator import OfflineStack
from emulator.stack import ACCOUNT_ID, ALARM, FUNCTION, REGION, is_envelope_function
from idempotency import observability
from tests.integration.support import QUIET
from tools.template import Template

pytestmark = pytest.mark.offline_only(reason="it deploys its own stacks with and without the monitoring switches")

TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:on-call"
MONITORING = "Monitoring"
# Keyed by orderId, payload validation on: a repeat with another payload is a mismatch whatever the defaults.
MONITORED = {
    "AlarmTopicArn": TOPIC,
    "CreateDashboard": "true",
    "FailureProbability": "0",
    "LongestCallSeconds": "2",
    "IdempotencyKeyJmespath": "orderId",
    "PayloadValidationJmespath": "@",
}
# Functions log at WARNING but print their metrics, as on Lambda.
PRINTING_METRICS = {name: value for name, value in QUIET.items() if name != "POWERTOOLS_METRICS_DISABLED"}
# A test-owned workflow nesting the reusable envelope (envelope/template.yaml), which passes AlarmTopicArn on.
WRAPPING_TEMPLATE = Path(__file__).parent / "reusable_envelope" / "template.yaml"


def envelope_function_names(stack: OfflineStack) -> set[str]:
    return {
        stack.physical_id(name)
        for name in stack.template.resources_of_type(FUNCTION)
        if is_envelope_function(stack.template, name)
    }


def stack_alarms(stack: OfflineStack) -> list[dict[str, Any]]:
    """The alarms of one stack (its nested stacks' names begin with its own): moto's account is the process's."""
    found = stack._client("cloudwatch").describe_alarms(AlarmNamePrefix=f"{stack.stack_name}-")["MetricAlarms"]
    return list(found)


def stack_dashboards(stack: OfflineStack) -> list[str]:
    entries = stack._client("cloudwatch").list_dashboards(DashboardNamePrefix=f"{stack.stack_name}-")[
        "DashboardEntries"
    ]
    return [entry["DashboardName"] for entry in entries]


def alarm_metrics(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    """The metrics an alarm reads (itself, or each query of its metric math), dimensions as a dict."""
    if alarm.get("Metrics"):
        metrics = [query["MetricStat"]["Metric"] for query in alarm["Metrics"] if "MetricStat" in query]
    else:
        metrics = [{name: alarm[name] for name in ("Namespace", "MetricName", "Dimensions")}]
    return [
        {**metric, "Dimensions": {item["Name"]: item["Value"] for item in metric["Dimensions"]}} for metric in metrics
    ]


@pytest.fixture(scope="module")
def monitored() -> Iterator[OfflineStack]:
    with OfflineStack(MONITORED, environment=PRINTING_METRICS) as stack:
        yield stack


@pytest.fixture(scope="module")
def alarms(monitored: OfflineStack) -> list[dict[str, Any]]:
    return stack_alarms(monitored)


def test_without_a_topic_or_a_dashboard_nothing_more_is_deployed() -> None:
    conditional = {name for name, resource in Template.load().resources.items() if "Condition" in resource}

    with OfflineStack(environment=QUIET) as stack:
        assert conditional == {MONITORING}
        assert MONITORING not in stack.template.resources and stack.applications == {}
        assert stack_alarms(stack) == [] and stack_dashboards(stack) == []
        assert "MonitoringDashboardName" not in stack.outputs
        assert stack.run({"orderId": "unmonitored", "forceFailure": False}).status == "SUCCEEDED"


def test_with_a_topic_every_alarm_pages_it_on_alarm_and_on_ok(
    monitored: OfflineStack, alarms: list[dict[str, Any]]
) -> None:
    declared = monitored.applications[MONITORING].template.resources_of_type(ALARM)

    assert declared and len(alarms) == len(declared)
    for alarm in alarms:
        assert alarm["AlarmActions"] == alarm["OKActions"] == [TOPIC], alarm["AlarmName"]
        assert alarm["ActionsEnabled"] and alarm["TreatMissingData"] == "notBreaching"
        assert alarm["AlarmName"].startswith(f"{monitored.stack_name}-{MONITORING}-")


def test_the_alarms_on_aws_metrics_name_the_deployed_state_machine_functions_and_table(
    monitored: OfflineStack, alarms: list[dict[str, Any]]
) -> None:
    metrics = [metric for alarm in alarms for metric in alarm_metrics(alarm)]
    functions = envelope_function_names(monitored)

    on_states = [metric["Dimensions"] for metric in metrics if metric["Namespace"] == "AWS/States"]
    on_lambda = [metric for metric in metrics if metric["Namespace"] == "AWS/Lambda"]
    on_table = [metric["Dimensions"] for metric in metrics if metric["Namespace"] == "AWS/DynamoDB"]
    assert on_states and all(dimensions == {"StateMachineArn": monitored.state_machine_arn} for dimensions in on_states)
    assert {(metric["MetricName"], metric["Dimensions"]["FunctionName"]) for metric in on_lambda} == {
        (name, function) for name in ("Errors", "Throttles") for function in functions
    }
    assert on_table and all(dimensions["TableName"] == monitored.table_name for dimensions in on_table)


def test_the_alarms_on_the_envelopes_metrics_read_them_as_the_deployed_functions_print_them(
    monitored: OfflineStack, alarms: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    # Offline every function shares one process, and Powertools keeps its metrics and dimensions in
    # class-level dicts: two handlers flushing at once (a release delivered while the next execution's
    # take runs) mix their sets, which separate Lambda processes never do. Nothing else runs here.
    monitored.events.wait_until_delivered()
    capsys.readouterr()
    assert (
        monitored.run({"orderId": "monitored", "forceFailure": False}).status == "SUCCEEDED"
    )  # FreshRuns, StepsSucceeded
    assert monitored.run({"orderId": "monitored", "forceFailure": False}).status == "SUCCEEDED"  # Hits
    assert monitored.run({"orderId": "monitored", "forceFailure": True}).status == "FAILED"  # PayloadMismatches
    monitored.events.wait_until_delivered()
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    emitted = {
        (directive["Namespace"], metric["Name"]): {
            name: blob[name] for dimension_set in directive["Dimensions"] for name in dimension_set
        }
        for blob in printed
        for directive in blob["_aws"]["CloudWatchMetrics"]
        for metric in directive["Metrics"]
    }
    names = observability

    assert {"FreshRuns", "StepsSucceeded", "Hits", names.PAYLOAD_MISMATCHES} <= {name for _, name in emitted}, emitted
    assert {name for _, name in emitted} <= names.METRIC_NAMES
    (namespace,) = {namespace for namespace, _ in emitted}
    (dimensions,) = {json.dumps(found, sort_keys=True) for found in emitted.values()}
    own = [metric for alarm in alarms for metric in alarm_metrics(alarm) if not metric["Namespace"].startswith("AWS/")]
    assert own
    for metric in own:
        assert metric["Namespace"] == namespace and metric["MetricName"] in names.METRIC_NAMES
        assert metric["Dimensions"] == json.loads(dimensions), metric


def test_the_dashboard_shows_the_deployed_resources_metrics(monitored: OfflineStack) -> None:
    (name,) = stack_dashboards(monitored)
    body = json.loads(monitored._client("cloudwatch").get_dashboard(DashboardName=name)["DashboardBody"])
    lines = [line for widget in body["widgets"] for line in widget["properties"]["metrics"] if isinstance(line[0], str)]
    named = {(line[0], line[2]): line[3] for line in lines}
    functions = {line[3] for line in lines if line[0] == "AWS/Lambda"}

    assert monitored.outputs["MonitoringDashboardName"] == name
    assert named[("AWS/States", "StateMachineArn")] == monitored.state_machine_arn
    assert named[("AWS/DynamoDB", "TableName")] == monitored.table_name
    assert functions == envelope_function_names(monitored)
    assert all(widget["properties"]["region"] == REGION for widget in body["widgets"])


def test_the_reusable_envelope_nested_in_a_workflow_deploys_its_alarms_on_its_own_resources() -> None:
    with OfflineStack({"AlarmTopicArn": TOPIC}, template_path=WRAPPING_TEMPLATE, environment=QUIET) as stack:
        envelope = stack.applications["Envelope"]
        alarms = stack_alarms(stack)
        metrics = [metric for alarm in alarms for metric in alarm_metrics(alarm)]

        declared = envelope.applications[MONITORING].template.resources_of_type(ALARM)
        assert declared and len(alarms) == len(declared) and all(alarm["AlarmActions"] == [TOPIC] for alarm in alarms)
        assert {
            metric["Dimensions"]["FunctionName"] for metric in metrics if metric["Namespace"] == "AWS/Lambda"
        } == envelope_function_names(envelope)
        assert {
            metric["Dimensions"]["StateMachineArn"] for metric in metrics if metric["Namespace"] == "AWS/States"
        } == {envelope.state_machine_arn}
        assert {metric["Dimensions"]["TableName"] for metric in metrics if metric["Namespace"] == "AWS/DynamoDB"} == {
            envelope.table_name
        }
        assert stack_dashboards(stack) == []
