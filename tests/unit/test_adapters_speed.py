"""The adapters that only save CPU time: each answer stays the same, the repeated work is gone."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from typing import Any

import boto3
import botocore.loaders
import botocore.session
import pytest
from moto import mock_aws
from moto.stepfunctions.parser.asl.antlr.runtime.ASLParser import ASLParser
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_dynamodb
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser, ASLParserException

from emulator.adapters import parsed_definitions, shared_service_models, task_clients_reused
from emulator.events import ExecutionEnds


def definition() -> str:
    """A definition no other test parsed (the suite's own session keeps parse trees too)."""
    return json.dumps(
        {"Comment": uuid.uuid4().hex, "StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}
    )


def test_sessions_share_one_loader_and_a_second_client_reads_no_model_file(monkeypatch: pytest.MonkeyPatch) -> None:
    files_read: list[str] = []
    original = botocore.loaders.JSONFileLoader.load_file

    def load_file(self: Any, file_path: str) -> Any:
        files_read.append(file_path)
        return original(self, file_path)

    monkeypatch.setattr(botocore.loaders.JSONFileLoader, "load_file", load_file)
    with shared_service_models():
        first, second = botocore.session.Session(), botocore.session.Session()
        assert first.get_component("data_loader") is second.get_component("data_loader")
        boto3.Session(botocore_session=first).client("stepfunctions", region_name="us-east-1")
        files_read.clear()
        client = boto3.Session(botocore_session=second).client("stepfunctions", region_name="us-east-1")

    assert files_read == []
    assert client.meta.service_model.service_name == "stepfunctions"


def test_a_definition_is_parsed_once_and_each_call_gets_components_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    parses: list[int] = []
    original: Callable[[ASLParser], Any] = ASLParser.state_machine

    def state_machine(self: ASLParser) -> Any:
        parses.append(1)
        return original(self)

    monkeypatch.setattr(ASLParser, "state_machine", state_machine)
    text = definition()
    with parsed_definitions():
        first, tree = AmazonStateLanguageParser.parse(text)
        second, same_tree = AmazonStateLanguageParser.parse(text)

    assert len(parses) == 1
    assert same_tree is tree
    assert second is not first
    assert type(second) is type(first)


def test_a_definition_that_does_not_parse_is_refused_every_time() -> None:
    with parsed_definitions():
        for _ in range(2):
            with pytest.raises(ASLParserException):
                AmazonStateLanguageParser.parse('{"StartAt": "A", "States": ')


def test_a_wait_for_an_end_returns_when_an_execution_ends_and_not_before() -> None:
    ends = ExecutionEnds()
    seen = ends.count
    ends.wait_after(seen, timeout=0.01)  # nothing ended: the wait runs out
    assert ends.count == seen

    woken = threading.Event()

    def waiter() -> None:
        ends.wait_after(seen, timeout=60)
        woken.set()

    thread = threading.Thread(target=waiter)
    thread.start()
    assert not woken.wait(0.05)
    ends.notify()
    thread.join(60)

    assert woken.is_set()
    assert ends.count == seen + 1


def test_moto_tasks_share_one_client_per_service_made_as_moto_makes_it() -> None:
    # Each of moto's task modules imported the function by name; two of them are asked here.
    lambda_tasks: Any = lambda_eval_utils
    dynamodb_tasks: Any = state_task_service_dynamodb
    with mock_aws(), task_clients_reused():
        first = lambda_tasks.boto_client_for("us-east-1", "lambda")
        again = dynamodb_tasks.boto_client_for("us-east-1", "lambda")
        other = dynamodb_tasks.boto_client_for("us-east-1", "dynamodb")

        assert again is first
        assert other is not first
        assert first.meta.config.retries["total_max_attempts"] == 1  # moto's own settings
        assert other.list_tables()["TableNames"] == []  # answered by the mock
