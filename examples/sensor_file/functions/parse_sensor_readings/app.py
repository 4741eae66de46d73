"""Example (sensor file, seed 002): parses and checks every row of a sensor CSV before anything is stored.

The sensor file workflow (``statemachine/sensor_file.asl.json``) reads the uploaded object and
calls this function once with ``{"csv": <the file's text>, "source": {"bucket", "key", "etag"}}``.
Each row is ``SENSOR_UID,TIMESTAMP,VALUE`` (an optional header row with those names is skipped,
and so are blank lines). The function returns one reading per row, ready for the workflow's Map
state to store, or, if any row is malformed, raises ``MalformedSensorFileError`` naming every bad
row (line number, text, what is wrong) so that nothing of the file is stored and the file stays
where it was uploaded.

A reading's ``readingId`` is ``<timestamp>#<etag>#<line>``: two rows of one sensor with the same
timestamp (the seed's sample has one) stay two readings, and processing the same file again
writes the same items, not new ones.
"""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()

COLUMNS = ("SENSOR_UID", "TIMESTAMP", "VALUE")
# One Step Functions payload (256 KiB) must hold every reading: a larger file needs a Distributed Map.
MAX_READINGS = 1000
# Problems listed in the error's message; the count says how many there are in all.
MAX_PROBLEMS_LISTED = 20
_SENSOR_UID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")


class MalformedSensorFileError(Exception):
    """Rows of the file are not SENSOR_UID,TIMESTAMP,VALUE; the message names each one."""


class SensorFileTooLargeError(Exception):
    """The file has more readings than one execution's payload can carry."""


def parse_row(line: int, fields: list[str]) -> dict[str, Any]:
    """The reading in one row's ``fields``, or ValueError saying what is wrong with them."""
    if len(fields) != len(COLUMNS):
        raise ValueError(f"expected {len(COLUMNS)} fields ({','.join(COLUMNS)}), found {len(fields)}")
    sensor_uid, timestamp, value = (field.strip() for field in fields)
    if not _SENSOR_UID.match(sensor_uid):
        raise ValueError(f"SENSOR_UID {sensor_uid!r} is not an identifier")
    if not timestamp.isdigit():
        raise ValueError(f"TIMESTAMP {timestamp!r} is not a whole number of seconds since the epoch")
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"VALUE {value!r} is not a number") from None
    if not number.is_finite():
        raise ValueError(f"VALUE {value!r} is not a finite number")
    return {"line": line, "sensorUid": sensor_uid, "timestamp": str(int(timestamp)), "value": str(number)}


def parse_readings(text: str, source: dict[str, str]) -> list[dict[str, Any]]:
    """Every reading of the CSV ``text``; MalformedSensorFileError if any row is malformed."""
    readings: list[dict[str, Any]] = []
    problems: list[str] = []
    for line, fields in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not any(field.strip() for field in fields):
            continue  # blank line
        if line == 1 and tuple(field.strip().upper() for field in fields) == COLUMNS:
            continue  # header row
        try:
            readings.append(parse_row(line, fields))
        except ValueError as problem:
            problems.append(f"line {line} {','.join(fields)!r}: {problem}")
    if problems:
        listed = "; ".join(problems[:MAX_PROBLEMS_LISTED])
        more = f" (and {len(problems) - MAX_PROBLEMS_LISTED} more)" if len(problems) > MAX_PROBLEMS_LISTED else ""
        raise MalformedSensorFileError(
            f"{len(problems)} malformed row(s) in s3://{source['bucket']}/{source['key']}, nothing stored: "
            f"{listed}{more}"
        )
    if not readings:
        raise MalformedSensorFileError(f"s3://{source['bucket']}/{source['key']} has no readings, nothing stored")
    if len(readings) > MAX_READINGS:
        raise SensorFileTooLargeError(
            f"s3://{source['bucket']}/{source['key']} has {len(readings)} readings; at most {MAX_READINGS} fit in one "
            "execution"
        )
    origin = f"s3://{source['bucket']}/{source['key']}"
    for reading in readings:
        reading["readingId"] = f"{reading['timestamp']}#{source['etag']}#{reading['line']}"
        reading["source"] = origin
    return readings


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    source = {name: str(event["source"][name]) for name in ("bucket", "key", "etag")}
    readings = parse_readings(str(event["csv"]), source)
    logger.info("Sensor file parsed", extra={"readings": len(readings), "key": source["key"]})
    return {"readings": readings, "count": len(readings)}
