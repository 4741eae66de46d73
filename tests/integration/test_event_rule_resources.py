"""``AWS::Events::Rule`` and ``AWS::IAM::Role`` in a deployed template, targeting a nested stack's state machine.

An example app nests the envelope and starts the envelope's state machine from an S3 rule of its
own: the rule's target is the nested application's output, which only exists once the
application is deployed. The templates here are the smallest that do the same.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emulator import OfflineStack
from tests.integration.support import QUIET, wait_until
from tools.template import UnsupportedTemplateFeature

NESTED = """\
Transform: AWS::Serverless-2016-10-31
Resources:
  Echo:
    Type: AWS::Serverless::StateMachine
    Properties:
      Type: STANDARD
      DefinitionUri: echo.asl.json
Outputs:
  EchoArn:
    Value: !Ref Echo
"""
ECHO = {"StartAt": "Echo", "States": {"Echo": {"Type": "Pass", "End": True}}}
RULE_TARGET = """\
        - Id: Echo
          Arn: !GetAtt Nested.Outputs.EchoArn
          {role}
          InputTransformer:
            InputPathsMap:
              name: $.detail.name
            InputTemplate: '{{"greeted": <name>}}'
"""
PARENT = """\
Transform: AWS::Serverless-2016-10-31
Resources:
  Nested:
    Type: AWS::Serverless::Application
    Properties:
      Location: nested/template.yaml
  StartEchoRole:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Version: "2012-10-17"
        Statement:
          - Effect: Allow
            Principal:
              Service: events.amazonaws.com
            Action: sts:AssumeRole
      Policies:
        - PolicyName: StartEcho
          PolicyDocument:
            Version: "2012-10-17"
            Statement:
              - Effect: Allow
                Action: states:StartExecution
                Resource: !GetAtt Nested.Outputs.EchoArn
  Greeted:
    Type: AWS::Events::Rule
    Properties:
      EventPattern:
        source:
          - test.greetings
      Targets:
{targets}"""


def write_templates(folder: Path, targets: str) -> Path:
    (folder / "nested").mkdir()
    (folder / "nested" / "template.yaml").write_text(NESTED, encoding="utf-8")
    (folder / "nested" / "echo.asl.json").write_text(json.dumps(ECHO), encoding="utf-8")
    parent = folder / "template.yaml"
    parent.write_text(PARENT.format(targets=targets), encoding="utf-8")
    return parent


def test_a_rule_starts_the_nested_state_machine_with_the_transformed_event(tmp_path: Path) -> None:
    template = write_templates(tmp_path, RULE_TARGET.format(role="RoleArn: !GetAtt StartEchoRole.Arn"))

    with OfflineStack(template_path=template, environment=QUIET) as stack:
        echo = stack.applications["Nested"].physical_id("Echo")
        stack.events.put_event("test.greetings", "Greeting", {"name": "Ada"}, [])
        stack.events.put_event("test.other", "Greeting", {"name": "Bob"}, [])
        wait_until(lambda: bool(stack.events.wait_until_delivered()), message="the rule's delivery")
        (delivery,) = stack.events.wait_until_delivered()
        started = stack.wait_for(delivery.payload["executionArn"])
        role = stack.physical_id("StartEchoRole")
        policy = stack._client("iam").get_role_policy(RoleName=role, PolicyName="StartEcho")["PolicyDocument"]

    assert delivery.rule == "GreetedEcho"
    assert started.status == "SUCCEEDED"
    assert started.execution_arn.split(":")[6] == echo.split(":")[6]
    assert started.output == {"greeted": "Ada"}
    assert policy["Statement"][0]["Resource"] == echo


def test_a_state_machine_target_without_a_role_is_refused(tmp_path: Path) -> None:
    template = write_templates(tmp_path, RULE_TARGET.format(role=""))

    with (
        pytest.raises(UnsupportedTemplateFeature, match="needs a RoleArn"),
        OfflineStack(template_path=template, environment=QUIET),
    ):
        pass


def test_a_target_that_is_not_a_state_machine_is_refused(tmp_path: Path) -> None:
    targets = "        - Id: Topic\n          Arn: arn:aws:sns:us-east-1:123456789012:somewhere\n"
    template = write_templates(tmp_path, targets)

    with (
        pytest.raises(UnsupportedTemplateFeature, match="only a state machine"),
        OfflineStack(template_path=template, environment=QUIET),
    ):
        pass
