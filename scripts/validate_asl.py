"""Validate every state machine definition of the SAM template as deployment would see it.

    python scripts/validate_asl.py                      # the project's template.yaml
    python scripts/validate_asl.py --template other.yaml
    python scripts/validate_asl.py --template envelope/template.yaml \
        --parameter-overrides WorkflowArn=arn:aws:states:us-east-1:123456789012:stateMachine:Wrapped

``sam validate --lint`` and cfn-lint do not look inside a ``DefinitionUri`` file, so this script
does. For each ``AWS::Serverless::StateMachine`` it reads the ``DefinitionUri`` file, fills its
``${...}`` placeholders from ``DefinitionSubstitutions`` exactly as SAM would (parameter defaults,
plausible fake names and ARNs for the stack's resources; the same code the offline emulator
uses), and then requires two independent validators to accept the result:

* ``statelint`` (the ASL linter; catches dangling ``Next``, unreachable states, bad fields), and
* moto's Amazon States Language parser, the interpreter that runs the workflow offline (catches
  unknown service integrations, malformed paths, wrong intrinsic arguments).

Each catches mistakes the other misses. Exit status 0 when all definitions pass, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:  # run as a file (python scripts/validate_asl.py), not only with -m
    sys.path.insert(0, str(PROJECT_ROOT))

from tools.template import (  # noqa: E402
    TEMPLATE_PATH,
    Resolver,
    Template,
    TemplateParameterError,
    UnsupportedTemplateFeature,
    substitute_definition,
)

STATE_MACHINE = "AWS::Serverless::StateMachine"
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
STACK_NAME = "idempotent-workflow"
# statelint wants BackoffRate etc. written as floats ("2.0"); AWS accepts any number (2).
STATELINT_IGNORE = "FLOAT"


@dataclass
class DefinitionCheck:
    """The outcome of validating one state machine's definition."""

    logical_id: str
    definition_uri: str
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


# --------------------------------------------------------------------------- substitution
def _fake_identity(resource_type: str, name: str) -> tuple[str, dict[str, str]]:
    """What ``Ref`` and ``Fn::GetAtt`` give for a resource of ``resource_type`` named ``name``."""
    prefix = f"{REGION}:{ACCOUNT_ID}"
    if resource_type == "AWS::DynamoDB::Table":
        return name, {"Arn": f"arn:aws:dynamodb:{prefix}:table/{name}"}
    if resource_type in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
        return name, {"Arn": f"arn:aws:lambda:{prefix}:function:{name}"}
    if resource_type in (STATE_MACHINE, "AWS::StepFunctions::StateMachine"):
        arn = f"arn:aws:states:{prefix}:stateMachine:{name}"
        return arn, {"Arn": arn, "Name": name}
    if resource_type == "AWS::SQS::Queue":
        url = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT_ID}/{name}"
        return url, {"Arn": f"arn:aws:sqs:{prefix}:{name}", "QueueName": name, "QueueUrl": url}
    if resource_type == "AWS::SNS::Topic":
        arn = f"arn:aws:sns:{prefix}:{name}"
        return arn, {"TopicArn": arn, "TopicName": name}
    # Any other type: Ref gives a name; a GetAtt of it fails with UnsupportedTemplateFeature.
    return name, {}


def _fake_resolver(
    template: Template, stack_name: str = STACK_NAME, parameters: Mapping[str, str] | None = None
) -> Resolver:
    """A resolver that gives every resource the kind of name and ARN CloudFormation would."""
    resolver = Resolver(
        parameters=template.parameter_values(parameters),
        pseudo={
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::StackName": stack_name,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        },
    )
    for logical_id, resource in template.resources.items():
        ref, attributes = _fake_identity(resource["Type"], f"{stack_name}-{logical_id}-VALIDATE0")
        resolver.refs[logical_id] = ref
        for attribute, value in attributes.items():
            resolver.attributes[(logical_id, attribute)] = value
    return resolver


def substituted_definitions(
    template_path: Path = TEMPLATE_PATH, parameters: Mapping[str, str] | None = None
) -> dict[str, tuple[str, str]]:
    """``{logical_id: (DefinitionUri, substituted definition text)}`` for each state machine.

    Raises ``UnsupportedTemplateFeature`` / ``TemplateParameterError`` when the placeholders and
    the substitutions do not match or a substitution cannot be resolved.
    """
    template = Template.load(template_path)
    resolver = _fake_resolver(template, parameters=parameters)
    definitions: dict[str, tuple[str, str]] = {}
    for logical_id, resource in template.resources_of_type(STATE_MACHINE).items():
        properties = resource.get("Properties", {})
        if "DefinitionUri" not in properties:
            raise UnsupportedTemplateFeature(
                f"{logical_id} has no DefinitionUri (inline Definition is not validated here)"
            )
        uri = properties["DefinitionUri"]
        if not isinstance(uri, str):
            raise UnsupportedTemplateFeature(f"{logical_id}: only a local file path is supported as DefinitionUri")
        text = (template.root / uri).read_text(encoding="utf-8")
        substitutions: Mapping[str, Any] = resolver.resolve(properties.get("DefinitionSubstitutions", {}))
        definitions[logical_id] = (uri, substitute_definition(text, substitutions))
    return definitions


# --------------------------------------------------------------------------- the two validators
def statelint_problems(definition: str) -> list[str]:
    """What ``statelint`` reports for ``definition`` (empty when it accepts it)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "definition.asl.json"
        path.write_text(definition, encoding="utf-8")
        completed = subprocess.run(
            [sys.executable, "-m", "statelint", f"--ignore={STATELINT_IGNORE}", str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
    if completed.returncode == 0:
        return []
    lines = [line.strip() for line in (completed.stdout + completed.stderr).splitlines() if line.strip()]
    # statelint prints a header ("One error:", "3 errors:") and one problem per line.
    problems = [line for line in lines if not line.endswith("error:") and not line.endswith("errors:")]
    return problems or [f"statelint exited with status {completed.returncode}"]


def moto_parser_problems(definition: str, state_machine_type: str = "STANDARD") -> list[str]:
    """What moto's ASL parser (the offline interpreter) says about ``definition``.

    Runs the same static analysis moto's ``create_state_machine`` runs, for the machine's type.
    """
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser, ASLParserException
    from moto.stepfunctions.parser.asl.static_analyser.express_static_analyser import ExpressStaticAnalyser
    from moto.stepfunctions.parser.asl.static_analyser.static_analyser import StaticAnalyser

    analyser = ExpressStaticAnalyser() if state_machine_type == "EXPRESS" else StaticAnalyser()
    try:
        AmazonStateLanguageParser.parse(definition)
        analyser.analyse(definition)
    except ASLParserException as error:
        return [f"syntax: {message}" for message in error.errors] or [repr(error)]
    except Exception as error:  # the parser reports semantic errors as plain exceptions (ValueError, ...)
        return [f"{type(error).__name__}: {error}"]
    return []


def validate_definition(definition: str, state_machine_type: str = "STANDARD") -> list[str]:
    """Problems found in one substituted definition by JSON, statelint and moto's parser."""
    try:
        json.loads(definition)
    except json.JSONDecodeError as error:
        return [f"not valid JSON: {error}"]
    problems = [f"statelint: {problem}" for problem in statelint_problems(definition)]
    problems += [f"moto ASL parser: {problem}" for problem in moto_parser_problems(definition, state_machine_type)]
    return problems


def validate_template(
    template_path: Path = TEMPLATE_PATH, parameters: Mapping[str, str] | None = None
) -> list[DefinitionCheck]:
    """Validate every state machine of ``template_path`` (with ``parameters`` overriding its defaults);
    a template problem is reported as a check too."""
    try:
        definitions = substituted_definitions(template_path, parameters)
        template = Template.load(template_path)
    except (UnsupportedTemplateFeature, TemplateParameterError, OSError) as error:
        return [
            DefinitionCheck(
                logical_id="(template)", definition_uri=str(template_path), problems=[f"substitution: {error}"]
            )
        ]
    if not definitions:
        return [DefinitionCheck("(template)", str(template_path), [f"no {STATE_MACHINE} in the template"])]
    checks = []
    for logical_id, (uri, definition) in definitions.items():
        machine_type = template.resources[logical_id].get("Properties", {}).get("Type", "STANDARD")
        checks.append(DefinitionCheck(logical_id, uri, validate_definition(definition, machine_type)))
    return checks


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--template", type=Path, default=TEMPLATE_PATH, help="SAM template (default: template.yaml)")
    parser.add_argument(
        "--parameter-overrides",
        nargs="*",
        default=[],
        metavar="NAME=VALUE",
        help="values for the template's parameters, e.g. one without a default (WorkflowArn=...)",
    )
    args = parser.parse_args(argv)
    overrides = dict(item.split("=", 1) for item in args.parameter_overrides)
    checks = validate_template(args.template, overrides)
    for check in checks:
        if check.ok:
            print(f"ASL OK: {check.logical_id} ({check.definition_uri}) passes statelint and moto's ASL parser")
        else:
            print(
                f"ASL INVALID: {check.logical_id} ({check.definition_uri}), after DefinitionSubstitutions:",
                file=sys.stderr,
            )
            for problem in check.problems:
                print(f"  - {problem}", file=sys.stderr)
    return 0 if all(check.ok for check in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
