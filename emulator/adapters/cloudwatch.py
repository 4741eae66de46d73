"""CloudWatch alarms refused where CloudWatch refuses them: moto keeps any metric math it is given."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any, Final
from unittest import mock

from moto.cloudwatch.exceptions import InvalidParameterCombination, ValidationError
from moto.cloudwatch.models import CloudWatchBackend

# PutMetricAlarm's quotas (CloudWatch API reference).
MAX_ALARM_QUERIES: Final[int] = 10
MAX_ALARM_DESCRIPTION: Final[int] = 1024
# A query's Id starts with a lowercase letter; metric math functions and keywords are upper case.
_QUERY_ID = re.compile(r"^[a-z][A-Za-z0-9_]*$")
_IDENTIFIER = re.compile(r"\b[a-z][A-Za-z0-9_]*\b")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def alarm_refusal(
    *,
    metric_name: str | None,
    queries: list[Any] | None,
    period: int | None,
    statistic: str | None,
    extended_statistic: str | None,
    evaluation_periods: int,
    datapoints_to_alarm: int | None,
    description: str | None,
) -> Exception | None:
    """What CloudWatch answers PutMetricAlarm with for these settings, or None if it accepts them.

    ``queries`` are moto's ``MetricDataQuery`` objects (``id``, ``expression``, ``metric_stat``,
    ``return_data``), built from the request's ``Metrics``.
    """
    if description is not None and len(description) > MAX_ALARM_DESCRIPTION:
        return ValidationError(f"AlarmDescription is longer than {MAX_ALARM_DESCRIPTION} characters.")
    if datapoints_to_alarm is not None and int(datapoints_to_alarm) > int(evaluation_periods):
        return ValidationError("DatapointsToAlarm must be less than or equal to EvaluationPeriods.")
    if bool(metric_name) == bool(queries):
        return InvalidParameterCombination("Exactly one of MetricName and Metrics must be given.")
    if metric_name:
        if period is None or (statistic is None) == (extended_statistic is None):
            return ValidationError(
                "An alarm on one metric needs Period and exactly one of Statistic and ExtendedStatistic."
            )
        return None
    assert queries is not None
    if len(queries) > MAX_ALARM_QUERIES:
        return ValidationError(f"The Metrics list holds at most {MAX_ALARM_QUERIES} queries.")
    ids = [query.id for query in queries]
    if len(set(ids)) != len(ids) or not all(
        isinstance(query_id, str) and _QUERY_ID.match(query_id) for query_id in ids
    ):
        return ValidationError(f"Query ids must be unique and start with a lowercase letter: {ids}.")
    # ReturnData left out means true.
    returned = [query.id for query in queries if query.return_data in (None, True, "true")]
    if len(returned) != 1:
        return ValidationError(
            f"Metrics list must contain exactly one metric matching the ReturnData parameter, not {returned}."
        )
    for query in queries:
        if (query.expression is None) == (query.metric_stat is None):
            return ValidationError(f"Query {query.id} needs exactly one of Expression and MetricStat.")
        if query.expression is not None:
            unknown = sorted(set(_IDENTIFIER.findall(_QUOTED.sub("", query.expression))) - set(ids))
            if unknown:
                return ValidationError(
                    f"Error in expression '{query.id}': Unrecognized metric identifier {', '.join(unknown)}."
                )
    return None


@contextlib.contextmanager
def metric_alarms_checked() -> Iterator[None]:
    """Refuse a metric alarm as CloudWatch does: a bad metric math reference, two results, a missing statistic.

    moto stores whatever PutMetricAlarm is given, so a template whose alarm could never be created
    on AWS would deploy offline. Composite alarms (``rule``) are left as they are.
    """
    original = CloudWatchBackend.put_metric_alarm

    def put_metric_alarm(self: CloudWatchBackend, **request: Any) -> Any:
        if not request.get("rule"):
            refusal = alarm_refusal(
                metric_name=request.get("metric_name"),
                queries=request.get("metric_data_queries"),
                period=request.get("period"),
                statistic=request.get("statistic"),
                extended_statistic=request.get("extended_statistic"),
                evaluation_periods=request["evaluation_periods"],
                datapoints_to_alarm=request.get("datapoints_to_alarm"),
                description=request.get("description"),
            )
            if refusal is not None:
                raise refusal
        return original(self, **request)

    with mock.patch.object(CloudWatchBackend, "put_metric_alarm", put_metric_alarm):
        yield
