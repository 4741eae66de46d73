"""The alarms and dashboard every envelope deployment can switch on (the nested ``Monitoring`` stack).

Each alarm and widget must watch a metric that exists: the envelope's own metrics by the names,
namespace and dimension its functions emit (``observability.py``, Powertools' ``service``), and
AWS's metrics by the dimensions AWS publishes them with, naming the parent's own resources. Both
parents (``template.yaml`` and the reusable envelope) nest the same monitoring template.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from emulator.stack import ALARM, DASHBOARD, TABLE, is_envelope_function
from idempotency import observability
from idempotency.vocabulary import Outcome
from tools.template import ENVELOPE_STATE_MACHINE, PROJECT_ROOT, RECORD_TABLE, Resolver, Template

APPLICATION = "AWS::Serverless::Application"
FUNCTION = "AWS::Serverless::Function"
MONITORING = "Monitoring"
DOCS = PROJECT_ROOT / "docs" / "operations.md"
# Where a parent's Monitoring parameters say what each AWS dimension names (the monitoring template's parameters).
STATE_MACHINE_PARAMETER, TABLE_PARAMETER = "StateMachineArn", "TableName"
NAMESPACE_PARAMETER, SERVICE_PARAMETER, TOPIC_PARAMETER = "MetricsNamespace", "MetricsService", "AlarmTopicArn"
# The dimension Powertools Metrics adds from POWERTOOLS_SERVICE_NAME (the functions set no other).
SERVICE_DIMENSION = "service"
EXECUTION_OUTCOMES = {"ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"}
TABLE_THROTTLES = {"ReadThrottleEvents", "WriteThrottleEvents"}
_IDENTIFIER = re.compile(r"\b[a-z][A-Za-z0-9_]*\b")
_FUNCTIONS_OF_METRIC_MATH = {"FILL", "SUM", "METRICS", "IF", "AVG", "MAX", "MIN"}


@pytest.fixture(scope="module", params=["template.yaml", "envelope/template.yaml"])
def parent(request: pytest.FixtureRequest) -> Template:
    return Template.load(PROJECT_ROOT / request.param)


@pytest.fixture(scope="module")
def monitoring() -> Template:
    root = Template.load()
    return Template.load(root.root / root.resources[MONITORING]["Properties"]["Location"])


@pytest.fixture(scope="module")
def alarms(monitoring: Template) -> dict[str, dict[str, Any]]:
    return {name: resource["Properties"] for name, resource in monitoring.resources_of_type(ALARM).items()}


def watched(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    """Every metric an alarm reads: itself, or each MetricStat of its metric math."""
    if "Metrics" not in alarm:
        return [{name: alarm[name] for name in ("Namespace", "MetricName", "Dimensions")}]
    return [query["MetricStat"]["Metric"] for query in alarm["Metrics"] if "MetricStat" in query]


def dimensions(metric: dict[str, Any]) -> dict[str, Any]:
    return {dimension["Name"]: dimension["Value"] for dimension in metric.get("Dimensions", [])}


def ref(name: str) -> dict[str, str]:
    return {"Ref": name}


def monitoring_parameters(parent: Template) -> dict[str, Any]:
    return dict(parent.resources[MONITORING]["Properties"]["Parameters"])


def envelope_functions(parent: Template) -> list[str]:
    return [name for name in parent.resources_of_type(FUNCTION) if is_envelope_function(parent, name)]


# --------------------------------------------------------------------------- the envelope's own metrics
def test_every_alarm_on_the_envelopes_metrics_reads_a_name_the_functions_emit_in_their_namespace_and_service(
    alarms: dict[str, dict[str, Any]],
) -> None:
    own = [
        metric
        for alarm in alarms.values()
        for metric in watched(alarm)
        if metric["Namespace"] == ref(NAMESPACE_PARAMETER)
    ]

    assert own
    for metric in own:
        assert metric["MetricName"] in observability.METRIC_NAMES, metric
        assert dimensions(metric) == {SERVICE_DIMENSION: ref(SERVICE_PARAMETER)}, metric


def test_the_envelope_metrics_that_mean_trouble_each_have_an_alarm_of_their_own(
    alarms: dict[str, dict[str, Any]],
) -> None:
    names = observability
    alarmed = {alarm["MetricName"] for alarm in alarms.values() if alarm.get("Namespace") == ref(NAMESPACE_PARAMETER)}

    assert alarmed == {
        names.WAIT_TIMEOUTS,
        names.WAKE_UPS_FAILED,
        names.RECORDS_RELEASED,
        names.RESULTS_TOO_LARGE,
        names.PAYLOAD_MISMATCHES,
    }


def test_the_parents_give_the_namespace_and_service_their_functions_emit_under(parent: Template) -> None:
    given = monitoring_parameters(parent)
    environment = parent.body["Globals"]["Function"]["Environment"]["Variables"]

    assert given[NAMESPACE_PARAMETER] == environment["POWERTOOLS_METRICS_NAMESPACE"]
    assert given[SERVICE_PARAMETER] == environment["POWERTOOLS_SERVICE_NAME"]
    for name in envelope_functions(parent):  # none of them emits under names of its own
        own = parent.resources[name]["Properties"].get("Environment", {}).get("Variables", {})
        assert not {"POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_SERVICE_NAME"} & set(own), name


# --------------------------------------------------------------------------- AWS's metrics, on the parent's resources
def test_executions_that_failed_timed_out_or_were_aborted_raise_alarms_on_the_envelopes_state_machine(
    alarms: dict[str, dict[str, Any]], parent: Template
) -> None:
    on_states = [
        metric for alarm in alarms.values() for metric in watched(alarm) if metric["Namespace"] == "AWS/States"
    ]

    assert {metric["MetricName"] for metric in on_states} == EXECUTION_OUTCOMES
    assert all(dimensions(metric) == {STATE_MACHINE_PARAMETER: ref(STATE_MACHINE_PARAMETER)} for metric in on_states)
    assert monitoring_parameters(parent)[STATE_MACHINE_PARAMETER] == ref(ENVELOPE_STATE_MACHINE)


def test_every_envelope_function_has_an_errors_and_a_throttles_alarm_and_no_other_function_is_watched(
    alarms: dict[str, dict[str, Any]], parent: Template
) -> None:
    given = monitoring_parameters(parent)
    on_lambda = [
        metric for alarm in alarms.values() for metric in watched(alarm) if metric["Namespace"] == "AWS/Lambda"
    ]
    watched_functions = {
        (metric["MetricName"], given[dimensions(metric)["FunctionName"]["Ref"]]["Ref"]) for metric in on_lambda
    }

    functions = envelope_functions(parent)
    assert {"AcquireLockFunction", "SaveOutcomeFunction"} <= set(functions)
    assert watched_functions == {(name, function) for name in ("Errors", "Throttles") for function in functions}


def test_the_table_alarms_read_the_throttles_and_the_system_errors_of_every_operation_the_functions_may_call(
    alarms: dict[str, dict[str, Any]], parent: Template
) -> None:
    table = parent.resources_of_type(TABLE)
    granted = {
        action.removeprefix("dynamodb:")
        for name in envelope_functions(parent)
        for policy in parent.function_properties(name).get("Policies", [])
        for statement in policy.get("Statement", [])
        if statement["Resource"] == {"Fn::GetAtt": [RECORD_TABLE, "Arn"]}
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    }
    on_table = [
        metric for alarm in alarms.values() for metric in watched(alarm) if metric["Namespace"] == "AWS/DynamoDB"
    ]

    assert list(table) == [RECORD_TABLE] and monitoring_parameters(parent)[TABLE_PARAMETER] == ref(RECORD_TABLE)
    assert {
        metric["MetricName"] for metric in on_table if dimensions(metric) == {"TableName": ref(TABLE_PARAMETER)}
    } == TABLE_THROTTLES
    # DynamoDB publishes SystemErrors per table and operation only.
    system_errors = [dimensions(metric) for metric in on_table if metric["MetricName"] == "SystemErrors"]
    assert all(
        set(found) == {"TableName", "Operation"} and found["TableName"] == ref(TABLE_PARAMETER)
        for found in system_errors
    )
    assert {found["Operation"] for found in system_errors} == granted
    assert {"GetItem", "PutItem", "UpdateItem"} <= granted


# --------------------------------------------------------------------------- how every alarm behaves
def test_every_alarm_exists_only_with_a_topic_and_notifies_it_on_alarm_and_on_ok(
    monitoring: Template, alarms: dict[str, dict[str, Any]]
) -> None:
    assert alarms
    for name, alarm in alarms.items():
        assert monitoring.resources[name]["Condition"] == "AlarmsOn"
        assert alarm["AlarmActions"] == alarm["OKActions"] == [ref(TOPIC_PARAMETER)], name
        # Counts emit nothing while nothing happens: no data is good news.
        assert alarm["TreatMissingData"] == "notBreaching", name
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold", name
    assert monitoring.body["Conditions"]["AlarmsOn"] == {"Fn::Not": [{"Fn::Equals": [ref(TOPIC_PARAMETER), ""]}]}


def test_every_alarm_fires_at_the_thresholds_the_operations_guide_gives(alarms: dict[str, dict[str, Any]]) -> None:
    """The first occurrence in 5 minutes; throttles, which are retried, in 2 of 3 periods; failures at their
    parameter."""
    for name, alarm in alarms.items():
        periods = (
            {alarm.get("Period")}
            if "Period" in alarm
            else {query["MetricStat"]["Period"] for query in alarm["Metrics"] if "MetricStat" in query}
        )
        assert periods == {300}, name
        retried = name.endswith("ThrottlesAlarm")
        assert (alarm["EvaluationPeriods"], alarm.get("DatapointsToAlarm")) == ((3, 2) if retried else (1, None)), name
        expected = ref("FailedExecutionsAlarmThreshold") if name == "ExecutionsFailedAlarm" else 1
        assert alarm["Threshold"] == expected, name


def test_every_alarm_says_what_happened_and_what_to_do_first(alarms: dict[str, dict[str, Any]]) -> None:
    for name, alarm in alarms.items():
        description = alarm["AlarmDescription"]
        assert len(description) <= 1024, name  # CloudWatch's limit
        assert "First " in description, name


def test_every_metric_math_returns_one_series_built_from_the_alarms_own_queries(
    alarms: dict[str, dict[str, Any]],
) -> None:
    with_math = {name: alarm["Metrics"] for name, alarm in alarms.items() if "Metrics" in alarm}

    assert with_math
    for name, queries in with_math.items():
        (returned,) = [query for query in queries if query.get("ReturnData")]
        inputs = {query["Id"] for query in queries if "MetricStat" in query}
        used = set(_IDENTIFIER.findall(returned["Expression"])) - {word.lower() for word in _FUNCTIONS_OF_METRIC_MATH}
        assert used == inputs, name
        assert all(
            query["MetricStat"]["Stat"] == "Sum" and query["MetricStat"]["Period"] == 300
            for query in queries
            if "MetricStat" in query
        ), name


def test_the_operations_guide_explains_every_alarm(alarms: dict[str, dict[str, Any]]) -> None:
    guide = DOCS.read_text(encoding="utf-8")

    for name, alarm in alarms.items():
        # The page names each alarm as it is called after the stack's name.
        assert alarm["AlarmName"] == {"Fn::Sub": f"${{AWS::StackName}}-{name.removesuffix('Alarm')}"}, name
        assert f"`{name.removesuffix('Alarm')}`" in guide, name


# --------------------------------------------------------------------------- the dashboard
@pytest.fixture(scope="module")
def dashboard(monitoring: Template) -> dict[str, Any]:
    """The dashboard body as CloudFormation's Fn::Sub gives it, with each parameter named after itself."""
    (resource,) = monitoring.resources_of_type(DASHBOARD).values()
    resolver = Resolver(
        parameters={name: f"<{name}>" for name in monitoring.body["Parameters"]}, pseudo={"AWS::Region": "eu-west-1"}
    )
    body: dict[str, Any] = json.loads(resolver.resolve(resource["Properties"]["DashboardBody"]))
    return body


def dashboard_metrics(dashboard: dict[str, Any]) -> list[list[Any]]:
    """Every metric line of every widget, with "." (same as the line above) written out."""
    lines: list[list[Any]] = []
    for widget in dashboard["widgets"]:
        previous: list[Any] = []
        for line in widget["properties"]["metrics"]:
            if isinstance(line[0], dict):
                continue  # an expression
            plain = [item for item in line if not isinstance(item, dict)]
            plain = [previous[index] if item == "." else item for index, item in enumerate(plain)]
            lines.append(plain)
            previous = plain
    return lines


def test_every_dashboard_metric_is_one_the_functions_or_aws_publish_for_the_envelopes_resources(
    dashboard: dict[str, Any], parent: Template
) -> None:
    given = monitoring_parameters(parent)
    # Every envelope function's name, as the parent gives it to the monitoring stack.
    dashboard_function_parameters = {
        name for name, value in given.items() if value in [ref(function) for function in envelope_functions(parent)]
    }
    assert len(dashboard_function_parameters) == len(envelope_functions(parent))
    expected_dimensions = {
        "<MetricsNamespace>": {SERVICE_DIMENSION: "<MetricsService>"},
        "AWS/States": {"StateMachineArn": "<StateMachineArn>"},
        "AWS/DynamoDB": {"TableName": "<TableName>"},
    }
    functions = {f"<{name}>" for name in dashboard_function_parameters}

    lines = dashboard_metrics(dashboard)
    for namespace, name, *pairs in lines:
        shown = dict(zip(pairs[::2], pairs[1::2], strict=True))
        if namespace == "AWS/Lambda":
            assert set(shown) == {"FunctionName"} and shown["FunctionName"] in functions
        else:
            assert shown == expected_dimensions[namespace], (namespace, name)
        if namespace == "<MetricsNamespace>":
            assert name in observability.METRIC_NAMES
    assert {line[3] for line in lines if line[0] == "AWS/Lambda"} == functions
    assert all(widget["properties"]["region"] == "eu-west-1" for widget in dashboard["widgets"])


def test_the_dashboard_shows_hits_runs_contention_waits_releases_takeovers_units_throttles_and_outcomes(
    dashboard: dict[str, Any],
) -> None:
    names = observability
    shown = {line[1] for line in dashboard_metrics(dashboard)}
    hits, fresh = names.METRIC_FOR_OUTCOME[Outcome.COMPLETED], names.METRIC_FOR_OUTCOME[Outcome.ACQUIRED]

    assert {hits, fresh, names.METRIC_FOR_OUTCOME[Outcome.BUSY], names.WAITERS_WOKEN, names.WAIT_TIMEOUTS} <= shown
    assert {names.RECORDS_RELEASED, names.TAKEOVERS} <= shown
    assert {"ConsumedReadCapacityUnits", "ConsumedWriteCapacityUnits", *TABLE_THROTTLES} <= shown
    assert {"ExecutionsSucceeded", *EXECUTION_OUTCOMES} <= shown
    expressions = [
        line[0]["expression"]
        for widget in dashboard["widgets"]
        for line in widget["properties"]["metrics"]
        if isinstance(line[0], dict)
    ]
    assert any("hits" in expression and "fresh" in expression for expression in expressions)


# --------------------------------------------------------------------------- the switch in the parents
def test_both_parents_nest_the_same_monitoring_with_the_same_switches(parent: Template, monitoring: Template) -> None:
    resource = parent.resources[MONITORING]
    given = monitoring_parameters(parent)

    assert resource["Type"] == APPLICATION
    assert (parent.root / resource["Properties"]["Location"]).resolve() == monitoring.path.resolve()
    assert resource["Condition"] == "MonitoringOn"
    assert set(given) == set(monitoring.body["Parameters"])
    for switch in (TOPIC_PARAMETER, "CreateDashboard", "FailedExecutionsAlarmThreshold"):
        assert given[switch] == ref(switch)
        assert parent.body["Parameters"][switch] == monitoring.body["Parameters"][switch] | {
            "Description": parent.body["Parameters"][switch]["Description"]
        }
    assert parent.body["Parameters"][TOPIC_PARAMETER]["Default"] == ""
