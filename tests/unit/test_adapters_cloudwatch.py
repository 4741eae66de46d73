"""CloudWatch alarms refused as CloudWatch refuses them (emulator/adapters/cloudwatch.py).

moto alone stores any alarm; each case here is one CloudWatch refuses, sent through boto3 as a
deployment would send it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from emulator.adapters import metric_alarms_checked


def query(query_id: str, metric_name: str = "Errors", **extra: Any) -> dict[str, Any]:
    stat = {
        "Metric": {
            "Namespace": "AWS/Lambda",
            "MetricName": metric_name,
            "Dimensions": [{"Name": "FunctionName", "Value": "f"}],
        },
        "Period": 300,
        "Stat": "Sum",
    }
    return {"Id": query_id, "MetricStat": stat, "ReturnData": False, **extra}


def alarm(**settings: Any) -> dict[str, Any]:
    base = {
        "AlarmName": "a",
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "EvaluationPeriods": 1,
        "Threshold": 1.0,
    }
    return {**base, **settings}


MATH = [
    {"Id": "total", "Expression": "FILL(errors, 0) + FILL(throttles, 0)", "ReturnData": True},
    query("errors"),
    query("throttles", "Throttles"),
]
ONE_METRIC = {"Namespace": "AWS/Lambda", "MetricName": "Errors", "Period": 300, "Statistic": "Sum"}


@pytest.fixture
def cloudwatch() -> Iterator[Any]:
    with mock_aws(), metric_alarms_checked():
        yield boto3.client("cloudwatch", region_name="us-east-1")


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param({"Metrics": MATH}, id="metric math over two metrics"),
        pytest.param(ONE_METRIC, id="one metric"),
        pytest.param({**ONE_METRIC, "EvaluationPeriods": 3, "DatapointsToAlarm": 2}, id="2 of 3 periods"),
        pytest.param({"Metrics": [{**MATH[0], "Expression": "SUM(METRICS())"}, *MATH[1:]]}, id="functions in capitals"),
    ],
)
def test_an_alarm_cloudwatch_accepts_is_stored(cloudwatch: Any, settings: dict[str, Any]) -> None:
    cloudwatch.put_metric_alarm(**alarm(**settings))

    assert [found["AlarmName"] for found in cloudwatch.describe_alarms()["MetricAlarms"]] == ["a"]


@pytest.mark.parametrize(
    ("settings", "error"),
    [
        pytest.param(
            {"Metrics": [{**MATH[0], "Expression": "errors + timeouts"}, *MATH[1:]]},
            "Unrecognized metric identifier timeouts",
            id="an unknown query id",
        ),
        pytest.param(
            {"Metrics": [MATH[0], {**MATH[1], "ReturnData": True}, MATH[2]]},
            "exactly one metric matching the ReturnData",
            id="two results",
        ),
        pytest.param(
            {
                "Metrics": [
                    {key: value for key, value in MATH[0].items() if key != "ReturnData"},
                    {**MATH[1], "ReturnData": True},
                    MATH[2],
                ]
            },
            "exactly one metric",
            id="ReturnData left out is true",
        ),
        pytest.param({"Metrics": [{**MATH[0], "ReturnData": False}, *MATH[1:]]}, "exactly one metric", id="no result"),
        pytest.param(
            {"Metrics": [MATH[0], MATH[1], {**MATH[2], "Id": "errors"}]}, "unique", id="two queries with one id"
        ),
        pytest.param(
            {"Metrics": [MATH[0], *[query(f"m{index}") for index in range(10)]]}, "at most 10", id="eleven queries"
        ),
        pytest.param(
            {**ONE_METRIC, "Metrics": MATH}, "Exactly one of MetricName and Metrics", id="a metric and metric math"
        ),
        pytest.param(
            {key: value for key, value in ONE_METRIC.items() if key != "Statistic"},
            "Statistic",
            id="one metric without statistic",
        ),
        pytest.param(
            {**ONE_METRIC, "EvaluationPeriods": 1, "DatapointsToAlarm": 2},
            "DatapointsToAlarm",
            id="more datapoints than periods",
        ),
        pytest.param({**ONE_METRIC, "AlarmDescription": "x" * 1025}, "1024", id="a description too long"),
    ],
)
def test_an_alarm_cloudwatch_refuses_is_refused_and_not_stored(
    cloudwatch: Any, settings: dict[str, Any], error: str
) -> None:
    with pytest.raises(ClientError) as refused:
        cloudwatch.put_metric_alarm(**alarm(**settings))

    assert error in str(refused.value)
    assert cloudwatch.describe_alarms()["MetricAlarms"] == []


def test_moto_alone_stores_metric_math_naming_a_query_that_does_not_exist() -> None:
    with mock_aws():
        cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        cloudwatch.put_metric_alarm(**alarm(Metrics=[{**MATH[0], "Expression": "errors + timeouts"}, *MATH[1:]]))

        assert len(cloudwatch.describe_alarms()["MetricAlarms"]) == 1
