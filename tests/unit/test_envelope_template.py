"""The reusable envelope's template (``envelope/template.yaml``): one envelope, least privilege.

It must be the envelope users know from ``template.yaml`` (same parameters, code, layer and
generated ASL, no second copy), and its policies may name only its own resources and the
workflow it wraps: a deployment grants nothing on any other state machine.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from scripts import child_envelope
from tools.template import PROJECT_ROOT, Resolver, Template

ENVELOPE_TEMPLATE = PROJECT_ROOT / "envelope" / "template.yaml"
FUNCTION = "AWS::Serverless::Function"
STATE_MACHINE = "AWS::Serverless::StateMachine"
REGION, ACCOUNT, STACK = "us-east-1", "123456789012", "orders-envelope"
# Another partition, Region and account than the stack's: the execution ARNs must come from the
# wrapped ARN itself, not from the stack's pseudo parameters.
WRAPPED = "arn:aws-cn:states:cn-north-1:210987654321:stateMachine:Orders"
WRAPPED_EXECUTIONS = "arn:aws-cn:states:cn-north-1:210987654321:execution:Orders:*"
OWN_MACHINE = f"{STACK}-IdempotentWorkflow"
OWN_MACHINE_ARN = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{OWN_MACHINE}"
OWN_EXECUTIONS = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{OWN_MACHINE}:*"
TABLE_ARN = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{STACK}-IdempotencyTable"
# The rule Step Functions manages for .sync: its name is fixed by AWS.
SYNC_RULE = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/StepFunctionsGetEventsForStepFunctionsExecutionRule"
# Statements allowed Resource "*", and why: these actions take no resource-level permission.
WILDCARD_STATEMENTS = {
    "DeliverExecutionLogs": "CloudWatch Logs log delivery (vended logs) actions support only Resource *",
    "SendTraces": "X-Ray's PutTraceSegments, PutTelemetryRecords and sampling actions support only Resource *",
}
# Parameters of template.yaml that the reusable envelope has no use for.
ROOT_ONLY_PARAMETERS = {"WorkflowType", "FailureProbability"}


@pytest.fixture(scope="module")
def envelope() -> Template:
    return Template.load(ENVELOPE_TEMPLATE)


@pytest.fixture(scope="module")
def root() -> Template:
    return Template.load()


@pytest.fixture(scope="module")
def resolver(envelope: Template) -> Resolver:
    """Resolves the envelope as CloudFormation would, with ``WorkflowArn`` = ``WRAPPED``."""
    resolver = Resolver(
        parameters=envelope.parameter_values({"WorkflowArn": WRAPPED}),
        pseudo={"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::StackName": STACK, "AWS::Partition": "aws"},
    )
    for logical_id, resource in envelope.resources.items():
        if resource["Type"] == FUNCTION:
            resolver.refs[logical_id] = f"{STACK}-{logical_id}"
            resolver.attributes[(logical_id, "Arn")] = (
                f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{STACK}-{logical_id}"
            )
        elif resource["Type"] == STATE_MACHINE:
            resolver.refs[logical_id] = OWN_MACHINE_ARN
        elif resource["Type"] == "AWS::DynamoDB::Table":
            resolver.refs[logical_id] = f"{STACK}-IdempotencyTable"
            resolver.attributes[(logical_id, "Arn")] = TABLE_ARN
        else:
            resolver.refs[logical_id] = f"{STACK}-{logical_id}"
            resolver.attributes[(logical_id, "Arn")] = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{logical_id}:*"
    return resolver


def policies(envelope: Template) -> list[tuple[str, Any]]:
    """Every ``Policies`` item of every function and state machine, with its resource's logical id."""
    return [
        (logical_id, policy)
        for logical_id, resource in envelope.resources.items()
        for policy in resource.get("Properties", {}).get("Policies", [])
    ]


def statements(envelope: Template, resolver: Resolver) -> list[tuple[str, dict[str, Any]]]:
    """Every inline statement, resolved, with its resource's logical id."""
    return [
        (logical_id, statement)
        for logical_id, policy in policies(envelope)
        if "Statement" in policy
        for statement in resolver.resolve(policy["Statement"])
    ]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --------------------------------------------------------------------------- least privilege
def test_every_policy_is_an_inline_statement_or_a_policy_template_on_the_envelopes_own_resources(
    envelope: Template, resolver: Resolver
) -> None:
    functions = {f"{STACK}-{name}" for name in envelope.resources_of_type(FUNCTION)}
    for logical_id, policy in policies(envelope):
        if "Statement" in policy:
            continue
        ((name, arguments),) = policy.items()
        resolved = resolver.resolve(arguments)
        if name == "LambdaInvokePolicy":
            assert resolved["FunctionName"] in functions, (logical_id, policy)
        elif name == "StepFunctionsCallbackPolicy":
            assert resolved == {"StateMachineName": OWN_MACHINE}, (logical_id, policy)
        else:
            pytest.fail(f"{logical_id}: unexpected policy {name}; check what it grants, then allow it here")


def test_statements_name_only_the_envelopes_resources_and_the_wrapped_workflow(
    envelope: Template, resolver: Resolver
) -> None:
    # OWN_MACHINE_ARN: the front door starts the envelope itself.
    allowed = {TABLE_ARN, OWN_MACHINE_ARN, OWN_EXECUTIONS, WRAPPED, WRAPPED_EXECUTIONS, SYNC_RULE}
    for logical_id, statement in statements(envelope, resolver):
        assert statement["Effect"] == "Allow"
        assert not any("*" in action for action in as_list(statement["Action"])), (logical_id, statement)
        for resource in as_list(statement["Resource"]):
            if resource == "*":
                assert statement.get("Sid") in WILDCARD_STATEMENTS, (logical_id, statement)
            else:
                assert resource in allowed, (logical_id, statement["Sid"], resource)


def test_the_wrapped_workflow_may_be_started_followed_and_stopped_by_the_envelope_only(
    envelope: Template, resolver: Resolver
) -> None:
    granted: dict[str, set[tuple[str, str]]] = {WRAPPED: set(), WRAPPED_EXECUTIONS: set()}
    for logical_id, statement in statements(envelope, resolver):
        for resource in as_list(statement["Resource"]):
            for action in as_list(statement["Action"]):
                if resource in granted:
                    granted[resource].add((logical_id, action))

    assert granted[WRAPPED] == {
        ("IdempotentWorkflow", "states:StartExecution"),
        # Whether it is an Express state machine, which the envelope refuses to wrap.
        ("AcquireLockFunction", "states:DescribeStateMachine"),
    }
    assert granted[WRAPPED_EXECUTIONS] == {
        ("IdempotentWorkflow", "states:DescribeExecution"),
        ("IdempotentWorkflow", "states:StopExecution"),
        # A redriven envelope redrives the child it was stopped with, rather than start another.
        ("IdempotentWorkflow", "states:RedriveExecution"),
        # Whether the child of a record's holder still runs (DESIGN: liveness of holder and child).
        ("AcquireLockFunction", "states:DescribeExecution"),
        # Whether a failed child ended in a Fail state, which is not resumed (its redrive would rerun only that).
        ("AcquireLockFunction", "states:GetExecutionHistory"),
    }


def test_the_workflow_arn_parameter_accepts_a_state_machine_and_refuses_anything_else(envelope: Template) -> None:
    pattern = re.compile(envelope.body["Parameters"]["WorkflowArn"]["AllowedPattern"])

    assert pattern.match(WRAPPED)
    assert pattern.match("arn:aws:states:us-east-1:123456789012:stateMachine:my-workflow_2")
    for refused in (
        "Orders",
        "arn:aws:states:us-east-1:123456789012:execution:Orders:run-1",
        "arn:aws:states:us-east-1:123456789012:stateMachine:Orders:prod",  # an alias: executions are not named by it
        "arn:aws:lambda:us-east-1:123456789012:function:Orders",
        "*",
    ):
        assert not pattern.match(refused), refused


# --------------------------------------------------------------------------- the same envelope
def test_its_parameters_are_the_root_templates_with_the_same_defaults_and_descriptions(
    envelope: Template, root: Template
) -> None:
    own = dict(envelope.body["Parameters"])
    assert "Default" not in own.pop("WorkflowArn")
    shared = {name: spec for name, spec in root.body["Parameters"].items() if name not in ROOT_ONLY_PARAMETERS}

    assert own == shared


def test_its_functions_and_layer_are_the_root_templates_code(envelope: Template, root: Template) -> None:
    for logical_id in envelope.resources_of_type(FUNCTION):
        assert [path.resolve() for path in envelope.import_roots(logical_id)] == [
            path.resolve() for path in root.import_roots(logical_id)
        ]
        own, theirs = envelope.function_properties(logical_id), root.function_properties(logical_id)
        assert (own["Handler"], own["Runtime"], own["Timeout"]) == (
            theirs["Handler"],
            theirs["Runtime"],
            theirs["Timeout"],
        )
    assert set(envelope.resources_of_type(FUNCTION)) == {
        "AcquireLockFunction",
        "WaitForOwnerFunction",
        "SaveOutcomeFunction",
        "ReleaseAbandonedRecordFunction",
        "FrontDoorFunction",
    }


def test_the_functions_settings_are_the_root_templates_but_the_workflow_type(
    envelope: Template, root: Template
) -> None:
    own = envelope.body["Globals"]["Function"]["Environment"]["Variables"]
    theirs = root.body["Globals"]["Function"]["Environment"]["Variables"]

    assert own["WORKFLOW_TYPE"] == "STANDARD"
    different = {name for name in own.keys() | theirs.keys() if own.get(name) != theirs.get(name)}
    assert different == {"WORKFLOW_TYPE", "POWERTOOLS_SERVICE_NAME"}


def test_its_state_machine_is_the_generated_child_variant_around_the_workflow_arn(envelope: Template) -> None:
    (machine,) = envelope.resources_of_type(STATE_MACHINE).values()
    properties = machine["Properties"]

    assert (envelope.root / properties["DefinitionUri"]).resolve() == child_envelope.CHILD_ENVELOPE_PATH
    assert properties["DefinitionSubstitutions"]["ChildStateMachineArn"] == {"Ref": "WorkflowArn"}
    assert properties["Type"] == "STANDARD"


def test_the_release_rule_listens_to_its_own_state_machine_only(envelope: Template, resolver: Resolver) -> None:
    events = envelope.resources["ReleaseAbandonedRecordFunction"]["Properties"]["Events"]
    (rule,) = events.values()
    detail = resolver.resolve(rule["Properties"]["Pattern"])["detail"]

    assert detail == {"status": ["ABORTED", "TIMED_OUT", "FAILED"], "stateMachineArn": [OWN_MACHINE_ARN]}


def test_it_carries_what_the_serverless_application_repository_requires(envelope: Template) -> None:
    metadata = envelope.body["Metadata"]["AWS::ServerlessRepo::Application"]

    for field in (
        "Name",
        "Description",
        "Author",
        "SpdxLicenseId",
        "LicenseUrl",
        "ReadmeUrl",
        "Labels",
        "HomePageUrl",
        "SemanticVersion",
        "SourceCodeUrl",
    ):
        assert metadata.get(field), field
    assert re.fullmatch(r"\d+\.\d+\.\d+", metadata["SemanticVersion"])
    assert (envelope.root / metadata["ReadmeUrl"]).is_file()
    assert all(re.fullmatch(r"[a-zA-Z0-9+\-_:/@]{1,127}", label) for label in metadata["Labels"])


def test_its_outputs_give_the_state_machine_and_the_table(envelope: Template) -> None:
    outputs = envelope.body["Outputs"]

    assert outputs["IdempotentWorkflowArn"]["Value"] == {"Ref": "IdempotentWorkflow"}
    assert outputs["IdempotencyTableName"]["Value"] == {"Ref": "IdempotencyTable"}
