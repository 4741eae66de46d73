"""Reading the SAM template as CloudFormation would (tools/template.py).

Small templates written for a test cover the error cases; the real ``template.yaml`` and ASL file
give the facts the stack relies on.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import pytest

from tools.template import (
    Resolver,
    Template,
    TemplateParameterError,
    UnsupportedTemplateFeature,
    substitute_definition,
)

TemplateWriter = Callable[[str], Template]
FUNCTION = "AWS::Serverless::Function"
STATE_MACHINE = "AWS::Serverless::StateMachine"
PSEUDO = {
    "AWS::Region": "eu-west-1",
    "AWS::AccountId": "111122223333",
    "AWS::StackName": "shop",
    "AWS::Partition": "aws",
}

TAGS = """
Parameters:
  Stage: {Type: String, Default: dev}
Resources:
  Thing:
    Type: Custom::Thing
    Properties:
      Ref: !Ref Stage
      GetAttDotted: !GetAtt Table.Arn
      GetAttList: !GetAtt [Table, StreamArn]
      Sub: !Sub "${AWS::StackName}-${Stage}"
      SubWithVariables: !Sub
        - "${Name}.${AWS::Region}"
        - Name: !Ref Stage
      Nested:
        - !Ref Stage
        - Inner: !Sub "${Table.Arn}"
"""


def test_short_form_tags_load_as_their_long_form(write_template: TemplateWriter) -> None:
    properties = write_template(TAGS).resources["Thing"]["Properties"]

    assert properties == {
        "Ref": {"Ref": "Stage"},
        "GetAttDotted": {"Fn::GetAtt": ["Table", "Arn"]},
        "GetAttList": {"Fn::GetAtt": ["Table", "StreamArn"]},
        "Sub": {"Fn::Sub": "${AWS::StackName}-${Stage}"},
        "SubWithVariables": {"Fn::Sub": ["${Name}.${AWS::Region}", {"Name": {"Ref": "Stage"}}]},
        "Nested": [{"Ref": "Stage"}, {"Inner": {"Fn::Sub": "${Table.Arn}"}}],
    }


def test_loaded_tags_resolve(write_template: TemplateWriter) -> None:
    resolver = Resolver(parameters=write_template(TAGS).parameter_values(), pseudo=PSEUDO)
    resolver.attributes.update({("Table", "Arn"): "arn:table", ("Table", "StreamArn"): "arn:stream"})

    resolved = resolver.resolve(write_template(TAGS).resources["Thing"]["Properties"])

    assert resolved == {
        "Ref": "dev",
        "GetAttDotted": "arn:table",
        "GetAttList": "arn:stream",
        "Sub": "shop-dev",
        "SubWithVariables": "dev.eu-west-1",
        "Nested": ["dev", {"Inner": "arn:table"}],
    }


# --------------------------------------------------------------------------- parameters
def test_the_real_parameters_default_to_their_declared_defaults_as_strings(template: Template) -> None:
    declared = template.body["Parameters"]

    assert template.parameter_values() == {name: str(spec["Default"]) for name, spec in declared.items()}


def test_an_override_wins_and_is_given_as_a_string(template: Template) -> None:
    values = template.parameter_values({"PollIntervalSeconds": 5, "WaitersOnFailure": "Fail"})

    assert values["PollIntervalSeconds"] == "5"
    assert values["WaitersOnFailure"] == "Fail"
    assert values["RecordTtlSeconds"] == str(template.body["Parameters"]["RecordTtlSeconds"]["Default"])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        pytest.param({"PollIntervalSecs": 5}, "Unknown template parameter(s): PollIntervalSecs", id="misspelt name"),
        pytest.param(
            {"Zeta": 1, "Alpha": 2}, "Unknown template parameter(s): Alpha, Zeta", id="every unknown name, sorted"
        ),
        pytest.param({"PollIntervalSeconds": 0}, "PollIntervalSeconds=0 is below its MinValue 1", id="below MinValue"),
        pytest.param(
            {"FailureProbability": 1.5}, "FailureProbability=1.5 is above its MaxValue 1", id="above MaxValue"
        ),
        pytest.param(
            {"FailureProbability": "-0.1"},
            "FailureProbability=-0.1 is below its MinValue 0",
            id="below MinValue, as text",
        ),
        pytest.param(
            {"WorkflowType": "SYNC"},
            "WorkflowType=SYNC is not one of its AllowedValues: STANDARD, EXPRESS",
            id="string not allowed",
        ),
        pytest.param(
            {"LogRetentionDays": 31}, "LogRetentionDays=31 is not one of its AllowedValues", id="number not allowed"
        ),
        pytest.param({"RecordTtlSeconds": "a day"}, "RecordTtlSeconds='a day' is not a number", id="not a number"),
    ],
)
def test_a_bad_override_is_refused_naming_the_parameter(
    template: Template, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(TemplateParameterError) as refused:
        template.parameter_values(overrides)

    assert message in str(refused.value)


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"FailureProbability": 0}, id="MinValue itself"),
        pytest.param({"FailureProbability": 1}, id="MaxValue itself"),
        pytest.param({"WaitTimeoutSeconds": 0}, id="zero where MinValue is 0"),
        pytest.param({"LogRetentionDays": 7, "WorkflowType": "EXPRESS"}, id="allowed values"),
        pytest.param({"LogRetentionDays": "7"}, id="allowed number as text"),
    ],
)
def test_values_at_their_limits_are_accepted(template: Template, overrides: dict[str, Any]) -> None:
    values = template.parameter_values(overrides)

    assert {name: values[name] for name in overrides} == {name: str(value) for name, value in overrides.items()}


def test_a_parameter_without_default_needs_a_value(write_template: TemplateWriter) -> None:
    small = write_template("Parameters:\n  Name: {Type: String}\nResources: {}\n")

    with pytest.raises(TemplateParameterError, match="Parameter Name has no default and no value was given"):
        small.parameter_values()
    assert small.parameter_values({"Name": "x"}) == {"Name": "x"}


# --------------------------------------------------------------------------- Globals
GLOBALS = """
Globals:
  Function:
    Runtime: python3.13
    Timeout: 10
    Environment:
      Variables: {SHARED: global, OVERRIDDEN: global}
Resources:
  First:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: first/
      Timeout: 3
      Environment:
        Variables: {OVERRIDDEN: own, OWN: first}
  Second:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: second/
"""


def test_function_properties_merge_globals_and_own_values_win(write_template: TemplateWriter) -> None:
    properties = write_template(GLOBALS).function_properties("First")

    assert properties == {
        "Runtime": "python3.13",
        "Timeout": 3,
        "CodeUri": "first/",
        "Environment": {"Variables": {"SHARED": "global", "OVERRIDDEN": "own", "OWN": "first"}},
    }


def test_one_functions_variables_do_not_leak_into_another(write_template: TemplateWriter) -> None:
    small = write_template(GLOBALS)
    globals_before = copy.deepcopy(small.body["Globals"])

    small.function_properties("First")["Environment"]["Variables"]["LATER"] = "edited"
    second = small.function_properties("Second")

    assert second["Environment"]["Variables"] == {"SHARED": "global", "OVERRIDDEN": "global"}
    assert second["Timeout"] == 10
    assert small.body["Globals"] == globals_before


def test_a_template_without_globals_gives_the_functions_own_properties(write_template: TemplateWriter) -> None:
    small = write_template(
        "Resources:\n  Only:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: only/, Timeout: 5}\n"
    )

    assert small.function_properties("Only") == {"CodeUri": "only/", "Timeout": 5}


def test_the_real_failing_step_gets_the_global_variables_and_its_own(template: Template) -> None:
    variables = template.function_properties("RandomFailureFunction")["Environment"]["Variables"]

    assert variables["FAILURE_PROBABILITY"] == {"Ref": "FailureProbability"}
    assert set(template.body["Globals"]["Function"]["Environment"]["Variables"]) < set(variables)


# --------------------------------------------------------------------------- import roots
LAYERS = """
Resources:
  Shared:
    Type: AWS::Serverless::LayerVersion
    Properties: {ContentUri: layers/shared/}
  Table:
    Type: AWS::DynamoDB::Table
  WithLayer:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: functions/with_layer/, Layers: [!Ref Shared]}
  ByArn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/by_arn/
      Layers: ["arn:aws:lambda:us-east-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python313-arm64:7"]
  BySub:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/by_sub/
      Layers: [!Sub "arn:aws:lambda:${AWS::Region}:017000801446:layer:Powertools:7"]
  ByRefToATable:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: functions/by_ref/, Layers: [!Ref Table]}
"""


def test_import_roots_are_the_code_uri_then_each_layer(write_template: TemplateWriter) -> None:
    small = write_template(LAYERS)

    assert small.import_roots("WithLayer") == [small.root / "functions/with_layer", small.root / "layers/shared"]


@pytest.mark.parametrize(
    ("logical_id", "named"),
    [
        pytest.param("ByArn", "AWSLambdaPowertoolsPythonV3", id="layer ARN"),
        pytest.param("BySub", "Fn::Sub", id="layer ARN built with Sub"),
        pytest.param("ByRefToATable", "Table", id="Ref to a resource that is not a layer"),
    ],
)
def test_a_layer_not_of_this_template_is_refused(write_template: TemplateWriter, logical_id: str, named: str) -> None:
    with pytest.raises(UnsupportedTemplateFeature, match="only layers of this template can be emulated") as refused:
        write_template(LAYERS).import_roots(logical_id)

    assert logical_id in str(refused.value) and named in str(refused.value)


def test_every_real_function_imports_its_handler_from_existing_folders(template: Template) -> None:
    for logical_id in template.resources_of_type(FUNCTION):
        properties = template.function_properties(logical_id)
        code_uri, *layers = template.import_roots(logical_id)
        module = properties["Handler"].rpartition(".")[0]

        assert code_uri == template.root / properties["CodeUri"]
        assert (code_uri / f"{module.replace('.', '/')}.py").is_file(), logical_id
        assert len(layers) == len(properties.get("Layers", []))
        assert all(layer.is_dir() for layer in layers), logical_id


# --------------------------------------------------------------------------- Resolver
@pytest.fixture
def resolver() -> Resolver:
    resolver = Resolver(parameters={"Stage": "dev", "Retention": "7"}, pseudo=PSEUDO, refs={"Table": "shop-Table-1"})
    resolver.attributes[("Table", "Arn")] = "arn:aws:dynamodb:eu-west-1:111122223333:table/shop-Table-1"
    return resolver


@pytest.mark.parametrize(
    ("value", "resolved"),
    [
        pytest.param({"Ref": "Stage"}, "dev", id="Ref to a parameter"),
        pytest.param({"Ref": "AWS::Region"}, "eu-west-1", id="Ref to a pseudo parameter"),
        pytest.param({"Ref": "Table"}, "shop-Table-1", id="Ref to a resource"),
        pytest.param(
            {"Fn::GetAtt": ["Table", "Arn"]}, "arn:aws:dynamodb:eu-west-1:111122223333:table/shop-Table-1", id="GetAtt"
        ),
        pytest.param(
            {"Fn::Sub": "${AWS::StackName}-${Stage}-${AWS::AccountId}"},
            "shop-dev-111122223333",
            id="Sub with pseudo parameters",
        ),
        pytest.param(
            {"Fn::Sub": "arn:${AWS::Partition}:x:${Table}"}, "arn:aws:x:shop-Table-1", id="Sub with a resource"
        ),
        pytest.param(
            {"Fn::Sub": "${Table.Arn}/index/*"},
            "arn:aws:dynamodb:eu-west-1:111122223333:table/shop-Table-1/index/*",
            id="Sub with an attribute",
        ),
        pytest.param({"Fn::Sub": ["${A}-${Stage}", {"A": {"Ref": "Retention"}}]}, "7-dev", id="Sub with variables"),
        pytest.param({"Fn::Sub": ["${Stage}", {"Stage": "shadowed"}]}, "shadowed", id="a variable shadows a parameter"),
        pytest.param(
            {"Fn::Sub": "${!Literal}-${Stage}"}, "${Literal}-dev", id="Sub escape keeps a literal placeholder"
        ),
        pytest.param({"Fn::Sub": "no placeholders"}, "no placeholders", id="Sub of plain text"),
        pytest.param(
            [{"Ref": "Stage"}, {"K": {"Ref": "Stage"}}, 3], ["dev", {"K": "dev"}, 3], id="nested lists and objects"
        ),
        pytest.param(
            {"Ref": "Stage", "Other": {"Ref": "Stage"}},
            {"Ref": "Stage", "Other": "dev"},
            id="two keys: not an intrinsic",
        ),
        pytest.param({"Fn::Split": [":", "arn:aws:states"]}, ["arn", "aws", "states"], id="Split"),
        pytest.param({"Fn::Select": ["1", ["a", "b"]]}, "b", id="Select with the index as text"),
        pytest.param(
            {"Fn::Select": [6, {"Fn::Split": [":", "arn:aws:states:r:1:stateMachine:Orders"]}]},
            "Orders",
            id="Select of a Split",
        ),
        pytest.param({"Fn::Join": ["-", [{"Ref": "Stage"}, "b"]]}, "dev-b", id="Join"),
        pytest.param(
            {"Fn::Sub": ["x:${N}:*", {"N": {"Fn::Select": [1, {"Fn::Split": ["-", {"Ref": "Table"}]}]}}]},
            "x:Table:*",
            id="Sub with a variable from Select and Split",
        ),
    ],
)
def test_resolver_resolves_intrinsics(resolver: Resolver, value: Any, resolved: Any) -> None:
    assert resolver.resolve(value) == resolved


def test_parameters_come_before_pseudo_parameters_and_resources() -> None:
    resolver = Resolver(parameters={"Name": "parameter"}, pseudo={"Name": "pseudo"}, refs={"Name": "resource"})

    assert resolver.ref("Name") == "parameter"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param(
            {"Ref": "Missing"}, "Ref to 'Missing', which is not a parameter or a deployed resource", id="unknown Ref"
        ),
        pytest.param(
            {"Fn::GetAtt": ["Table", "StreamArn"]}, "Fn::GetAtt Table.StreamArn is not emulated", id="unknown attribute"
        ),
        pytest.param({"Fn::Sub": "${Missing}"}, "Ref to 'Missing'", id="unknown name in Sub"),
        pytest.param(
            {"Fn::Sub": "${Queue.Url}"}, "Fn::GetAtt Queue.Url is not emulated", id="unknown attribute in Sub"
        ),
        pytest.param(
            {"Fn::FindInMap": ["M", "a", "b"]}, "Intrinsic Fn::FindInMap is not emulated", id="intrinsic not emulated"
        ),
        pytest.param(
            {"Fn::Select": [3, {"Fn::Split": [":", "a:b"]}]}, "Fn::Select index 3 is outside", id="Select past the end"
        ),
        pytest.param(
            {"K": [{"Fn::If": ["C", 1, 2]}]}, "Intrinsic Fn::If is not emulated", id="nested intrinsic not emulated"
        ),
    ],
)
def test_what_cannot_be_resolved_is_refused_not_passed_through(resolver: Resolver, value: Any, message: str) -> None:
    with pytest.raises(UnsupportedTemplateFeature) as refused:
        resolver.resolve(value)

    assert message in str(refused.value)


# --------------------------------------------------------------------------- Conditions
CONDITIONS = """
Parameters:
  Topic: {Type: String, Default: ""}
  Dashboard: {Type: String, Default: "false"}
Conditions:
  HasTopic: !Not [!Equals [!Ref Topic, ""]]
  WantsDashboard: !Equals [!Ref Dashboard, "true"]
  Either: !Or [!Condition HasTopic, !Condition WantsDashboard]
  Both: !And [!Condition HasTopic, !Condition WantsDashboard]
Resources:
  Always: {Type: Custom::Thing}
  Alarm: {Type: Custom::Thing, Condition: HasTopic}
  Board: {Type: Custom::Thing, Condition: WantsDashboard}
  Nested: {Type: Custom::Thing, Condition: Either}
  Pair: {Type: Custom::Thing, Condition: Both}
Outputs:
  Plain: {Value: x}
  BoardName: {Value: !Ref Board, Condition: WantsDashboard}
"""


@pytest.mark.parametrize(
    ("overrides", "deployed", "outputs"),
    [
        pytest.param({}, {"Always"}, {"Plain"}, id="defaults: only the unconditional ones"),
        pytest.param(
            {"Topic": "arn:aws:sns:eu-west-1:111122223333:t"}, {"Always", "Alarm", "Nested"}, {"Plain"}, id="a topic"
        ),
        pytest.param({"Dashboard": "true"}, {"Always", "Board", "Nested"}, {"Plain", "BoardName"}, id="a dashboard"),
        pytest.param(
            {"Topic": "t", "Dashboard": "true"},
            {"Always", "Alarm", "Board", "Nested", "Pair"},
            {"Plain", "BoardName"},
            id="both",
        ),
    ],
)
def test_a_resource_or_output_under_a_false_condition_is_not_deployed(
    write_template: TemplateWriter, overrides: dict[str, str], deployed: set[str], outputs: set[str]
) -> None:
    template = write_template(CONDITIONS)
    resolver = Resolver(
        parameters=template.parameter_values(overrides), pseudo=PSEUDO, conditions=template.body["Conditions"]
    )

    as_deployed = template.as_deployed(resolver)

    assert set(as_deployed.resources) == deployed
    assert set(as_deployed.body["Outputs"]) == outputs
    assert set(template.resources) == {"Always", "Alarm", "Board", "Nested", "Pair"}  # the template itself is unchanged


@pytest.mark.parametrize(
    ("conditions", "name", "message"),
    [
        pytest.param({}, "Missing", "Condition 'Missing' is not declared", id="undeclared"),
        pytest.param(
            {"C": {"Fn::Contains": [["a"], "a"]}},
            "C",
            "Condition function Fn::Contains is not emulated",
            id="function not emulated",
        ),
        pytest.param({"C": "true"}, "C", "Not a condition function", id="not a function"),
    ],
)
def test_a_condition_that_cannot_be_evaluated_is_refused(conditions: dict[str, Any], name: str, message: str) -> None:
    resolver = Resolver(parameters={}, pseudo=PSEUDO, conditions=conditions)

    with pytest.raises(UnsupportedTemplateFeature) as refused:
        resolver.condition(name)

    assert message in str(refused.value)


# --------------------------------------------------------------------------- DefinitionSubstitutions
def test_substitute_definition_replaces_every_occurrence() -> None:
    definition = '{"A": "${Arn}", "B": "${Arn}", "Seconds": ${Seconds}}'

    assert (
        substitute_definition(definition, {"Arn": "arn:x", "Seconds": 10})
        == '{"A": "arn:x", "B": "arn:x", "Seconds": 10}'
    )


def test_substitute_definition_refuses_a_substitution_the_definition_does_not_use() -> None:
    with pytest.raises(UnsupportedTemplateFeature, match="DefinitionSubstitutions not used by the definition: Unused"):
        substitute_definition('{"A": "${Used}"}', {"Used": "x", "Unused": "y"})


def test_substitute_definition_refuses_a_placeholder_left_without_a_substitution() -> None:
    with pytest.raises(
        UnsupportedTemplateFeature, match="Definition placeholders without a substitution: Forgotten, Other"
    ):
        substitute_definition('{"A": "${Used}", "B": "${Other}", "C": "${Forgotten}"}', {"Used": "x"})


def test_the_real_definition_and_its_substitutions_match_one_to_one(template: Template) -> None:
    for logical_id, resource in template.resources_of_type(STATE_MACHINE).items():
        properties = resource["Properties"]
        definition = (template.root / properties["DefinitionUri"]).read_text(encoding="utf-8")
        substitutions = properties["DefinitionSubstitutions"]

        assert set(re.findall(r"\$\{(\w+)\}", definition)) == set(substitutions), logical_id
        substituted = substitute_definition(definition, {name: f"value-of-{name}" for name in substitutions})
        assert "${" not in substituted
