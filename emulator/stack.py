"""Deploy ``template.yaml`` into moto in process and run executions of its state machine.

    with OfflineStack() as stack:
        result = stack.run({"orderId": "42"})
        result.status, result.output, result.states_entered

Resources are created from the template itself: the table from its properties, each function
with its ``Globals`` and environment resolved and its handler imported from ``CodeUri``, and
the state machine from its ``DefinitionUri`` with ``DefinitionSubstitutions`` resolved.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import io
import json
import logging
import os
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from pathlib import Path
from types import ModuleType
from typing import Any
from unittest import mock

import boto3
from boto3.dynamodb.types import TypeDeserializer
from moto import mock_aws

from emulator.adapters import (
    DEFAULT_TASK_TOKEN_LENGTH,
    FunctionsClock,
    LambdaRegistry,
    atomic_dynamodb_writes,
    aws_context_timestamps,
    dynamodb_item_size_limit,
    express_executions_unanswered,
    express_outcome,
    immediate_stops,
    in_process_lambdas,
    is_express_arn,
    load_module,
    long_task_token,
    metric_alarms_checked,
    metrics_per_function,
    nested_workflows,
    outcome_before_status,
    realistic_task_tokens,
    redrivable_executions,
    scaled_waits,
    sdk_bodies_as_text,
    sdk_step_functions_calls,
    step_functions_payload_limit,
    stop_express_execution,
    stoppable_task_token_waits,
    sync_children_stop_with_their_task,
    task_tokens_reach_started_executions,
    timeouts_evaluated_once_stopped,
    work_done_once,
)
from emulator.events import EventBus, ExecutionEnds, execution_status_events, publish_status_change, s3_object_events
from emulator.execution_api import named_and_checked_executions
from tools.executions import FINISHED as FINISHED
from tools.executions import ExecutionDidNotFinish as ExecutionDidNotFinish
from tools.executions import ExecutionResult as ExecutionResult
from tools.executions import finished_execution
from tools.template import ENVELOPE_STATE_MACHINE as ENVELOPE_STATE_MACHINE
from tools.template import RECORD_TABLE as RECORD_TABLE
from tools.template import TEMPLATE_PATH, Resolver, Template, UnsupportedTemplateFeature, substitute_definition

REGION = "us-east-1"
# What a handler module makes on its first call, made when its stack is deployed (cold_start).
COLD_START_FACTORY = "deployment"
# An execution still under way: the redriven one too, until its program runs again.
UNFINISHED = ("RUNNING", "PENDING_REDRIVE")
ACCOUNT_ID = "123456789012"
TABLE = "AWS::DynamoDB::Table"
FUNCTION = "AWS::Serverless::Function"
STATE_MACHINE = "AWS::Serverless::StateMachine"
LAYER = "AWS::Serverless::LayerVersion"
LOG_GROUP = "AWS::Logs::LogGroup"
TOPIC = "AWS::SNS::Topic"
BUCKET = "AWS::S3::Bucket"
APPLICATION = "AWS::Serverless::Application"
ROLE = "AWS::IAM::Role"
RULE = "AWS::Events::Rule"
PERMISSION = "AWS::Lambda::Permission"
ALARM = "AWS::CloudWatch::Alarm"
DASHBOARD = "AWS::CloudWatch::Dashboard"
# Created in this order: each kind may refer to the kinds before it. A nested application comes
# after the stack's state machines (it may be given them, as the reusable envelope is given the
# workflow it wraps); only the stack's roles, event rules and Outputs may use what it gives back
# (an example's S3 rule starts its nested envelope's state machine). Alarms and dashboards, last,
# only name what the others are called.
EMULATED_TYPES = (
    TABLE,
    FUNCTION,
    STATE_MACHINE,
    LAYER,
    LOG_GROUP,
    TOPIC,
    BUCKET,
    APPLICATION,
    ROLE,
    PERMISSION,
    RULE,
    ALARM,
    DASHBOARD,
)
# The principal a rule invokes a function as: without a permission for it, EventBridge's invocation is refused.
EVENTS_PRINCIPAL = "events.amazonaws.com"
# What an AWS::Events::Rule and its state machine targets may say offline: the rest (other buses,
# dead-letter queues, other target kinds) is refused rather than silently left out.
_RULE_PROPERTIES = frozenset({"Description", "Name", "EventPattern", "State", "Targets"})
_RULE_TARGET_PROPERTIES = frozenset({"Arn", "Id", "RoleArn", "InputTransformer", "RetryPolicy"})
# Properties of a nested application that change nothing offline.
_APPLICATION_SETTINGS_WITHOUT_OFFLINE_EFFECT = ("Tags", "TimeoutInMinutes", "NotificationARNs")
# An AWS::CloudWatch::Alarm's properties are PutMetricAlarm's parameters, these numbers among them.
_ALARM_PROPERTIES = frozenset(
    {
        "ActionsEnabled",
        "AlarmActions",
        "AlarmDescription",
        "AlarmName",
        "ComparisonOperator",
        "DatapointsToAlarm",
        "Dimensions",
        "EvaluateLowSampleCountPercentile",
        "EvaluationPeriods",
        "ExtendedStatistic",
        "InsufficientDataActions",
        "MetricName",
        "Metrics",
        "Namespace",
        "OKActions",
        "Period",
        "Statistic",
        "Threshold",
        "ThresholdMetricId",
        "TreatMissingData",
        "Unit",
    }
)
_ALARM_INTEGERS = ("DatapointsToAlarm", "EvaluationPeriods", "Period")
# Between a record id's scope and its key (envelope/layers/idempotency/idempotency/key.py).
SCOPE_SEPARATOR = "#"
# A function whose layers hold this package is part of the envelope; the others do the business work.
ENVELOPE_PACKAGE = "idempotency"
# Bucket settings that change nothing a test can observe offline (who may read, how data rests,
# what expires after days).
_BUCKET_SETTINGS_WITHOUT_OFFLINE_EFFECT = (
    "BucketEncryption",
    "PublicAccessBlockConfiguration",
    "LifecycleConfiguration",
)
# How much less the state machine's TimeoutSeconds is shortened than Wait and Retry: at the default
# scale 0.01 the default 1800 s lasts 180 s, not 18 s, which many concurrent executions on two busy
# cores come close to; a declared 60 s still times out after 6 s.
EXECUTION_TIMEOUT_SLOWDOWN = 10
# Function environment for demos, tests and benchmarks: Powertools logs at WARNING, and no EMF
# metrics printed on stdout (tests/unit/test_envelope_handlers.py checks the metrics themselves).
QUIET_FUNCTIONS = {"POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true"}
_DESERIALIZE = TypeDeserializer().deserialize


def is_envelope_function(template: Template, logical_id: str) -> bool:
    """Whether a function loads the envelope's package from one of its layers."""
    return any((root / ENVELOPE_PACKAGE / "__init__.py").exists() for root in template.import_roots(logical_id)[1:])


def business_step_functions(template: Template) -> tuple[str, ...]:
    """The functions the envelope's own state machine runs as its business steps."""
    invoked = template.functions_invoked_by(ENVELOPE_STATE_MACHINE)
    return tuple(name for name in invoked if not is_envelope_function(template, name))


class OfflineStack:
    """This project's stack, deployed into moto, with the adapters that let it run offline.

    Args:
        parameters: template parameter overrides (names as in ``template.yaml``).
        time_scale: factor applied to ASL ``Wait`` seconds, ``Retry`` intervals and task timeouts.
            The state machine's own timeout is scaled ``EXECUTION_TIMEOUT_SLOWDOWN`` times less
            (at most to its declared length): the emulator does not shorten its own work.
        stack_name: the stack's name (``AWS::StackName``); by default ``idempotent-workflow-<random>``,
            unique like every name CloudFormation derives from it, so two stacks can coexist.
        template_path: the SAM template to deploy.
        environment: extra environment variables for the functions (e.g. ``POWERTOOLS_LOG_LEVEL``).
        task_token_length: how many characters ``$$.Task.Token`` has (AWS's are long opaque strings;
            SendTaskSuccess accepts up to 2,048).
    """

    def __init__(
        self,
        parameters: Mapping[str, Any] | None = None,
        *,
        time_scale: float = 0.01,
        stack_name: str | None = None,
        template_path: Path = TEMPLATE_PATH,
        environment: Mapping[str, str] | None = None,
        task_token_length: int = DEFAULT_TASK_TOKEN_LENGTH,
    ) -> None:
        template = Template.load(template_path)
        self.parameters = template.parameter_values(parameters)
        self.time_scale = time_scale
        long_task_token(task_token_length)  # refuses a length AWS would not hand out, before deploying
        self.task_token_length = task_token_length
        self.execution_timeout_scale = min(1.0, time_scale * EXECUTION_TIMEOUT_SLOWDOWN)
        self._suffix = uuid.uuid4().hex[:8].upper()
        self.stack_name = stack_name or f"idempotent-workflow-{self._suffix.lower()}"
        self.lambdas = LambdaRegistry()
        self.events = EventBus(region=REGION, account_id=ACCOUNT_ID)
        self._ends = ExecutionEnds()
        self.outputs: dict[str, str] = {}
        # Nested applications (AWS::Serverless::Application with a local Location), by logical id.
        self.applications: dict[str, OfflineStack] = {}
        # Shared with nested stacks: every state machine of the process, and every function's
        # environment variable (functions share this process's environment).
        self._state_machine_types: dict[str, str] = {}
        self._function_environment: dict[str, str] = {}
        self._environment = dict(environment or {})
        self._resolver = Resolver(
            parameters=self.parameters,
            pseudo={
                "AWS::Region": REGION,
                "AWS::AccountId": ACCOUNT_ID,
                "AWS::StackName": self.stack_name,
                "AWS::Partition": "aws",
                "AWS::URLSuffix": "amazonaws.com",
            },
            conditions=template.body.get("Conditions", {}),
        )
        # What CloudFormation creates: resources and outputs whose Condition is false are left out.
        self.template = template.as_deployed(self._resolver)
        self._exit: ExitStack | None = None
        # Step Functions' clock for what it measures in days (the 14 days an execution can be
        # redriven): a test moves it on instead of waiting. The functions read functions_clock.
        self.clock: Callable[[], datetime.datetime] = lambda: datetime.datetime.now(tz=datetime.UTC)
        # The clock the functions read (leases, quiet periods, TTLs): real time unless a test moves
        # it on (with stack.functions_clock.moved_on(seconds): ...); a nested stack's functions share it.
        self.functions_clock = FunctionsClock()
        # None: clients are intercepted in process by mock_aws; a URL: they call that endpoint.
        self._endpoint_url: str | None = None

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> OfflineStack:
        with ExitStack() as exit_stack:
            exit_stack.enter_context(mock.patch.dict(os.environ, _fake_aws_environment()))
            exit_stack.enter_context(_quiet_interpreter())
            exit_stack.enter_context(work_done_once())
            exit_stack.enter_context(self._aws_backend())
            exit_stack.enter_context(in_process_lambdas(self.lambdas))
            exit_stack.enter_context(metrics_per_function())
            exit_stack.enter_context(dynamodb_item_size_limit())  # before the lock: the lock covers its put-back
            exit_stack.enter_context(atomic_dynamodb_writes())
            exit_stack.enter_context(scaled_waits(self.time_scale, self.execution_timeout_scale))
            exit_stack.enter_context(nested_workflows())
            exit_stack.enter_context(sync_children_stop_with_their_task())
            exit_stack.enter_context(sdk_bodies_as_text())
            exit_stack.enter_context(sdk_step_functions_calls())
            exit_stack.enter_context(aws_context_timestamps())
            exit_stack.enter_context(step_functions_payload_limit())
            exit_stack.enter_context(execution_status_events(self.events, self._ends))
            exit_stack.enter_context(immediate_stops())
            exit_stack.enter_context(outcome_before_status())
            exit_stack.enter_context(
                redrivable_executions(
                    lambda: self.clock(), on_redrive=lambda execution: publish_status_change(self.events, execution)
                )
            )
            exit_stack.enter_context(timeouts_evaluated_once_stopped())
            exit_stack.enter_context(task_tokens_reach_started_executions())
            exit_stack.enter_context(stoppable_task_token_waits())
            exit_stack.enter_context(named_and_checked_executions())
            exit_stack.enter_context(express_executions_unanswered())
            exit_stack.enter_context(realistic_task_tokens(self.task_token_length))
            exit_stack.enter_context(s3_object_events(self.events))
            exit_stack.enter_context(metric_alarms_checked())
            self.sfn = self._client("stepfunctions")
            self.dynamodb = self._client("dynamodb")
            self.events.connect()
            self._deploy(exit_stack)
            exit_stack.callback(self._stop_running_executions)
            self._exit = exit_stack.pop_all()
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._exit is not None
        self._exit.close()

    def _aws_backend(self) -> contextlib.AbstractContextManager[object]:
        """Where the stack is deployed: moto in process. A subclass may serve it over HTTP instead."""
        return mock_aws(config={"stepfunctions": {"execute_state_machine": True}})

    def _client(self, service: str) -> Any:
        return boto3.client(service, region_name=REGION, endpoint_url=self._endpoint_url)  # type: ignore[call-overload]

    # ------------------------------------------------------------------ resources
    @property
    def envelope(self) -> OfflineStack:
        """The stack that holds the envelope: this one, or the nested application that does (as when an
        app nests ``envelope/template.yaml`` around a workflow of its own). A stack with no envelope
        anywhere (a plain workflow in a test) is its own."""
        if self._holds_envelope or not self.has_envelope:
            return self
        nested = [application.envelope for application in self.applications.values() if application.has_envelope]
        if len(nested) != 1:
            found = ", ".join(sorted(self.applications)) or "none"
            raise LookupError(
                f"{self.template.path}: {len(nested)} nested applications hold an envelope (applications: {found}); "
                "use .applications[...]"
            )
        return nested[0]

    @property
    def has_envelope(self) -> bool:
        """Whether this stack or one of its nested applications holds an envelope."""
        return self._holds_envelope or any(application.has_envelope for application in self.applications.values())

    @functools.cached_property
    def _holds_envelope(self) -> bool:
        # An envelope is a state machine that runs the envelope's own functions (those loading its layer).
        # Read from the template once (it looks for the layer on disk): executions start on every call.
        return any(
            is_envelope_function(self.template, function)
            for machine in self.template.resources_of_type(STATE_MACHINE)
            for function in self.template.functions_invoked_by(machine)
        )

    @property
    def state_machine_arn(self) -> str:
        """The envelope's state machine, where executions start unless told otherwise (a nested envelope's
        when the envelope is nested: never the workflow it wraps)."""
        envelope = self.envelope
        return envelope.physical_id(envelope._main(STATE_MACHINE, ENVELOPE_STATE_MACHINE))

    @property
    def table_name(self) -> str:
        """The table of the idempotency records (a nested envelope's when the envelope is nested)."""
        envelope = self.envelope
        return envelope.physical_id(envelope._main(TABLE, RECORD_TABLE))

    def physical_id(self, logical_id: str) -> str:
        """What ``Ref`` of a resource gives: table name, function name, state machine ARN."""
        return self._resolver.refs[logical_id]

    def _main(self, resource_type: str, logical_id: str) -> str:
        """The only resource of ``resource_type``, or ``logical_id`` among several."""
        resources = self.template.resources_of_type(resource_type)
        return next(iter(resources)) if len(resources) == 1 else logical_id

    def _physical_name(self, logical_id: str) -> str:
        return f"{self.stack_name}-{logical_id}-{self._suffix}"

    def _deploy(self, exit_stack: ExitStack) -> None:
        unsupported = {res["Type"] for res in self.template.resources.values()} - set(EMULATED_TYPES)
        if unsupported:
            raise UnsupportedTemplateFeature(f"Resource types not emulated: {', '.join(sorted(unsupported))}")
        for logical_id in self.template.resources_of_type(TABLE):
            self._create_table(logical_id)
        for logical_id in self.template.resources_of_type(LOG_GROUP):
            # Offline, executions keep their history in moto; the log group only needs a name and ARN.
            name = str(
                self._resolver.resolve(
                    self.template.resources[logical_id]["Properties"].get("LogGroupName", logical_id)
                )
            )
            self._resolver.refs[logical_id] = name
            self._resolver.attributes[(logical_id, "Arn")] = f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{name}:*"
        for logical_id in self.template.resources_of_type(TOPIC):
            self._create_topic(logical_id)
        for logical_id in self.template.resources_of_type(BUCKET):
            self._create_bucket(logical_id)
        for logical_id in self.template.resources_of_type(LAYER):
            # Functions import a layer's code from its ContentUri (Template.import_roots); only its ARN is needed here.
            self._resolver.refs[logical_id] = (
                f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:layer:{self._physical_name(logical_id)}:1"
            )
        role_arn = self._client("iam").create_role(
            RoleName=f"{self.stack_name}-role-{self._suffix}",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]
        for logical_id in self.template.resources_of_type(STATE_MACHINE):
            # A state machine's name and ARN are known before it exists, as CloudFormation knows them
            # from its Name: a function may be given them (the front door starts the envelope).
            self._name_state_machine(logical_id)
        environment = self._function_environment
        functions = self.template.resources_of_type(FUNCTION)
        for logical_id in functions:
            environment.update(self._create_function(logical_id, role_arn, environment))
        environment.update(self._environment)
        # Handlers read their settings from the environment, on import or on their first call (cold_start).
        exit_stack.enter_context(mock.patch.dict(os.environ, environment))
        for logical_id in functions:
            module_name, _, function_name = self.template.function_properties(logical_id)["Handler"].rpartition(".")
            module = load_module(self.template.import_roots(logical_id), module_name)
            self.functions_clock.read_by(module)
            cold_start(module)
            self.lambdas.register(self.physical_id(logical_id), logical_id, getattr(module, function_name))
        for logical_id in self.template.resources_of_type(STATE_MACHINE):
            self._create_state_machine(logical_id, role_arn)
        for logical_id in self.template.resources_of_type(APPLICATION):
            self._deploy_application(logical_id, exit_stack)
        for logical_id in self.template.resources_of_type(ROLE):
            self._create_role(logical_id)
        for logical_id, rule in self.template.resources_of_type(RULE).items():
            # Named before anything refers to it (a function's permission names the rule that may invoke it).
            name = str(self._resolver.resolve(rule["Properties"].get("Name", self._physical_name(logical_id))))
            self._resolver.refs[logical_id] = name
            self._resolver.attributes[(logical_id, "Arn")] = f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{name}"
        for logical_id in self.template.resources_of_type(PERMISSION):
            # Nothing to create offline: the rules that invoke functions check that one lets them.
            self._resolver.refs[logical_id] = f"{self.stack_name}-{logical_id}"
        for logical_id in self.template.resources_of_type(RULE):
            self._create_rule(logical_id)
        for logical_id in functions:
            self._create_event_rules(logical_id)
        for logical_id in self.template.resources_of_type(STATE_MACHINE):
            self._create_state_machine_rules(logical_id)
        for logical_id in self.template.resources_of_type(ALARM):
            self._create_alarm(logical_id)
        for logical_id in self.template.resources_of_type(DASHBOARD):
            self._create_dashboard(logical_id)
        self.outputs = {
            name: str(self._resolver.resolve(output["Value"]))
            for name, output in self.template.body.get("Outputs", {}).items()
        }

    def _deploy_application(self, logical_id: str, exit_stack: ExitStack) -> None:
        """Deploy a nested application from its local template, as a nested stack of this one.

        Its parameters are resolved in this stack; its resources live in the same emulated account
        (same clients, functions, event bus, adapters); its outputs are ``!GetAtt <id>.Outputs.<name>``.
        An application from the Serverless Application Repository (``ApplicationId``) cannot be
        fetched offline: nest its template by path instead.
        """
        properties = self._resolver.resolve(self.template.resources[logical_id]["Properties"])
        location = properties.get("Location")
        if not isinstance(location, str):
            raise UnsupportedTemplateFeature(
                f"{logical_id}: only an application with a local template (Location: <path>) is emulated, not "
                f"{location!r}"
            )
        unsupported = sorted(
            set(properties) - {"Location", "Parameters", *_APPLICATION_SETTINGS_WITHOUT_OFFLINE_EFFECT}
        )
        if unsupported:
            raise UnsupportedTemplateFeature(
                f"{logical_id}: application properties not emulated: {', '.join(unsupported)}"
            )
        nested = OfflineStack(
            {name: str(value) for name, value in properties.get("Parameters", {}).items()},
            time_scale=self.time_scale,
            # As CloudFormation names a nested stack: the parent's name, the logical id, a suffix.
            stack_name=f"{self.stack_name}-{logical_id}-{uuid.uuid4().hex[:8].upper()}",
            template_path=self.template.root / location,
            environment=self._environment,
            task_token_length=self.task_token_length,
        )
        nested.functions_clock = self.functions_clock
        nested._deploy_inside(self, exit_stack)
        self.applications[logical_id] = nested
        self._resolver.refs[logical_id] = (
            f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{nested.stack_name}/{uuid.uuid4()}"
        )
        for name, value in nested.outputs.items():
            self._resolver.attributes[(logical_id, f"Outputs.{name}")] = value

    def _deploy_inside(self, parent: OfflineStack, exit_stack: ExitStack) -> None:
        """Deploy this stack as a nested stack of ``parent``, already entered: it uses the parent's
        backend, adapters and clients, and shares what the process shares."""
        self._endpoint_url = parent._endpoint_url
        self.sfn, self.dynamodb = parent.sfn, parent.dynamodb
        self.lambdas = parent.lambdas.nested()
        self.events = parent.events
        self._ends = parent._ends
        self._state_machine_types = parent._state_machine_types
        self._function_environment = parent._function_environment
        self._deploy(exit_stack)

    def _create_table(self, logical_id: str) -> None:
        properties = self._resolver.resolve(self.template.resources[logical_id]["Properties"])
        name = self._physical_name(logical_id)
        table = self.dynamodb.create_table(
            TableName=name,
            KeySchema=properties["KeySchema"],
            AttributeDefinitions=properties["AttributeDefinitions"],
            BillingMode=properties.get("BillingMode", "PROVISIONED"),
        )["TableDescription"]
        ttl = properties.get("TimeToLiveSpecification")
        if ttl:
            self.dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
        self._resolver.refs[logical_id] = name
        self._resolver.attributes[(logical_id, "Arn")] = table["TableArn"]

    def _create_topic(self, logical_id: str) -> None:
        properties = self._resolver.resolve(self.template.resources[logical_id].get("Properties", {}))
        name = str(properties.get("TopicName", self._physical_name(logical_id)))
        attributes = {key: str(properties[key]) for key in ("DisplayName", "KmsMasterKeyId") if key in properties}
        arn = self._client("sns").create_topic(Name=name, Attributes=attributes)["TopicArn"]
        self._resolver.refs[logical_id] = arn
        self._resolver.attributes[(logical_id, "TopicArn")] = arn
        self._resolver.attributes[(logical_id, "TopicName")] = name

    def _create_bucket(self, logical_id: str) -> None:
        properties = self._resolver.resolve(self.template.resources[logical_id].get("Properties", {}))
        name = str(properties.get("BucketName", self._physical_name(logical_id).lower()))
        s3 = self._client("s3")
        s3.create_bucket(Bucket=name)
        for setting, value in properties.items():
            if setting == "NotificationConfiguration":
                if set(value) != {"EventBridgeConfiguration"}:
                    raise UnsupportedTemplateFeature(f"{logical_id}: only EventBridge notifications are emulated")
                s3.put_bucket_notification_configuration(
                    Bucket=name, NotificationConfiguration={"EventBridgeConfiguration": {}}
                )
            elif setting == "VersioningConfiguration":
                s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": value["Status"]})
            elif setting not in ("BucketName", *_BUCKET_SETTINGS_WITHOUT_OFFLINE_EFFECT):
                raise UnsupportedTemplateFeature(f"{logical_id}: bucket property {setting} is not emulated")
        self._resolver.refs[logical_id] = name
        self._resolver.attributes[(logical_id, "Arn")] = f"arn:aws:s3:::{name}"

    def _create_function(self, logical_id: str, role_arn: str, environment: Mapping[str, str]) -> dict[str, str]:
        # Events name resources created later (the state machine); they are wired in _create_event_rules.
        own = {name: value for name, value in self.template.function_properties(logical_id).items() if name != "Events"}
        properties = self._resolver.resolve(own)
        variables = {name: str(value) for name, value in properties.get("Environment", {}).get("Variables", {}).items()}
        clashes = sorted(name for name, value in variables.items() if environment.get(name, value) != value)
        if clashes:
            # Functions share this process's environment; the same name must mean the same value.
            raise UnsupportedTemplateFeature(
                f"{logical_id} sets {', '.join(clashes)} differently from another function"
            )
        name = self._physical_name(logical_id)
        function = self._client("lambda").create_function(
            FunctionName=name,
            Runtime=properties["Runtime"],
            Role=role_arn,
            Handler=properties["Handler"],
            Code={"ZipFile": _placeholder_zip()},
            Timeout=int(properties.get("Timeout", 3)),
            MemorySize=int(properties.get("MemorySize", 128)),
            Architectures=properties.get("Architectures", ["x86_64"]),
            Environment={"Variables": variables},
        )
        self._resolver.refs[logical_id] = name
        self._resolver.attributes[(logical_id, "Arn")] = function["FunctionArn"]
        return variables

    def _create_event_rules(self, logical_id: str) -> None:
        events = self.template.function_properties(logical_id).get("Events", {})
        for event_id, event in events.items():
            if event.get("Type") != "EventBridgeRule":
                raise UnsupportedTemplateFeature(f"{logical_id}: event source {event.get('Type')} is not emulated")
            pattern = self._resolver.resolve(event["Properties"]["Pattern"])
            self.events.add_rule(f"{logical_id}{event_id}", pattern, self.physical_id(logical_id))

    def _create_state_machine_rules(self, logical_id: str) -> None:
        events = self.template.resources[logical_id]["Properties"].get("Events", {})
        for event_id, event in events.items():
            properties = event.get("Properties", {})
            unsupported = sorted(set(properties) - {"Pattern", "InputTransformer", "RetryPolicy"})
            if event.get("Type") != "EventBridgeRule" or unsupported:
                raise UnsupportedTemplateFeature(
                    f"{logical_id}.{event_id}: only EventBridgeRule with Pattern and InputTransformer is emulated"
                )
            self.events.add_state_machine_rule(
                f"{logical_id}{event_id}",
                self._resolver.resolve(properties["Pattern"]),
                self.physical_id(logical_id),
                self._resolver.resolve(properties.get("InputTransformer")),
            )

    def _create_alarm(self, logical_id: str) -> None:
        """A CloudWatch alarm in moto, which keeps it as given (no metric reaches it offline)."""
        properties = self._resolver.resolve(self.template.resources[logical_id]["Properties"])
        unsupported = sorted(set(properties) - _ALARM_PROPERTIES)
        if unsupported:
            raise UnsupportedTemplateFeature(f"{logical_id}: alarm properties not emulated: {', '.join(unsupported)}")
        request = {
            "AlarmName": self._physical_name(logical_id),
            **properties,
            "Threshold": float(properties["Threshold"]),
        }
        request.update({name: int(properties[name]) for name in _ALARM_INTEGERS if name in properties})
        cloudwatch = self._client("cloudwatch")
        cloudwatch.put_metric_alarm(**request)
        self._resolver.refs[logical_id] = request["AlarmName"]
        self._resolver.attributes[(logical_id, "Arn")] = cloudwatch.describe_alarms(AlarmNames=[request["AlarmName"]])[
            "MetricAlarms"
        ][0]["AlarmArn"]

    def _create_dashboard(self, logical_id: str) -> None:
        """A CloudWatch dashboard in moto (which refuses a body that is not JSON, as CloudWatch does)."""
        properties = self._resolver.resolve(self.template.resources[logical_id]["Properties"])
        name = str(properties.get("DashboardName", self._physical_name(logical_id)))
        self._client("cloudwatch").put_dashboard(DashboardName=name, DashboardBody=properties["DashboardBody"])
        self._resolver.refs[logical_id] = name

    def _create_role(self, logical_id: str) -> None:
        """An IAM role with its inline policies: moto keeps them (nothing is enforced offline)."""
        properties = self._resolver.resolve(self.template.resources[logical_id]["Properties"])
        unsupported = sorted(set(properties) - {"AssumeRolePolicyDocument", "Policies", "Description", "Path"})
        if unsupported:
            raise UnsupportedTemplateFeature(f"{logical_id}: role properties not emulated: {', '.join(unsupported)}")
        iam = self._client("iam")
        name = self._physical_name(logical_id)
        arn = iam.create_role(
            RoleName=name, AssumeRolePolicyDocument=json.dumps(properties["AssumeRolePolicyDocument"])
        )["Role"]["Arn"]
        for policy in properties.get("Policies", []):
            iam.put_role_policy(
                RoleName=name, PolicyName=policy["PolicyName"], PolicyDocument=json.dumps(policy["PolicyDocument"])
            )
        self._resolver.refs[logical_id] = name
        self._resolver.attributes[(logical_id, "Arn")] = arn

    def _create_rule(self, logical_id: str) -> None:
        """An EventBridge rule on the default bus whose targets are state machines (started with the
        event, or with what its ``InputTransformer`` builds), as ``Events`` of a state machine are."""
        properties = self._resolver.resolve(self.template.resources[logical_id]["Properties"])
        unsupported = sorted(set(properties) - _RULE_PROPERTIES)
        if unsupported:
            raise UnsupportedTemplateFeature(f"{logical_id}: rule properties not emulated: {', '.join(unsupported)}")
        if properties.get("State", "ENABLED") != "ENABLED":
            return  # a disabled rule delivers nothing
        for target in properties.get("Targets", []):
            where = f"{logical_id} target {target.get('Id')!r}"
            unsupported = sorted(set(target) - _RULE_TARGET_PROPERTIES)
            if unsupported:
                raise UnsupportedTemplateFeature(f"{where}: target properties not emulated: {', '.join(unsupported)}")
            arn = str(target["Arn"])
            if ":lambda:" in arn and ":function:" in arn:
                self._check_invoke_permission(where, arn, self._resolver.attributes[(logical_id, "Arn")])
                self.events.add_rule(
                    f"{logical_id}{target['Id']}", properties["EventPattern"], arn, target.get("InputTransformer")
                )
                continue
            if ":states:" not in arn or ":stateMachine:" not in arn:
                raise UnsupportedTemplateFeature(
                    f"{where}: only a state machine or a Lambda function is emulated as a rule's target, not {arn}"
                )
            if "RoleArn" not in target:
                # EventBridge starts an execution with the target's role; without one the target is refused.
                raise UnsupportedTemplateFeature(
                    f"{where}: a state machine target needs a RoleArn (EventBridge starts it with that role)"
                )
            self.events.add_state_machine_rule(
                f"{logical_id}{target['Id']}", properties["EventPattern"], arn, target.get("InputTransformer")
            )

    def _name_state_machine(self, logical_id: str) -> None:
        properties = self.template.resources[logical_id]["Properties"]
        name = (
            str(self._resolver.resolve(properties["Name"])) if "Name" in properties else self._physical_name(logical_id)
        )
        self._resolver.refs[logical_id] = f"arn:aws:states:{REGION}:{ACCOUNT_ID}:stateMachine:{name}"
        self._resolver.attributes[(logical_id, "Name")] = name
        self._resolver.attributes[(logical_id, "Arn")] = self._resolver.refs[logical_id]

    def _check_invoke_permission(self, where: str, function_arn: str, rule_arn: str) -> None:
        """A rule invokes a function only if an ``AWS::Lambda::Permission`` lets EventBridge do it (as on AWS,
        where the invocation is refused without one): for that function, and for this rule if it names one."""
        for resource in self.template.resources_of_type(PERMISSION).values():
            permission = self._resolver.resolve(resource["Properties"])
            function = str(permission.get("FunctionName", ""))
            if (
                permission.get("Action") == "lambda:InvokeFunction"
                and permission.get("Principal") == EVENTS_PRINCIPAL
                and function_arn in (function, f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{function}")
                and permission.get("SourceArn", rule_arn) == rule_arn
            ):
                return
        raise UnsupportedTemplateFeature(
            f"{where}: no AWS::Lambda::Permission lets {EVENTS_PRINCIPAL} invoke {function_arn} (EventBridge's "
            "invocation would be refused)"
        )

    def _create_state_machine(self, logical_id: str, role_arn: str) -> None:
        properties = self.template.resources[logical_id]["Properties"]
        name = self._resolver.attributes[(logical_id, "Name")]
        definition = substitute_definition(
            (self.template.root / properties["DefinitionUri"]).read_text(encoding="utf-8"),
            self._resolver.resolve(properties.get("DefinitionSubstitutions", {})),
        )
        json.loads(definition)  # a JSON error here names the line, unlike create_state_machine's
        machine_type = str(self._resolver.resolve(properties.get("Type", "STANDARD")))
        arn: str = self.sfn.create_state_machine(name=name, definition=definition, roleArn=role_arn, type=machine_type)[
            "stateMachineArn"
        ]
        if arn != self._resolver.refs[logical_id]:
            raise UnsupportedTemplateFeature(
                f"{logical_id}: created as {arn}, not {self._resolver.refs[logical_id]} as named"
            )
        self._state_machine_types[arn] = machine_type

    # ------------------------------------------------------------------ executions
    def start_execution(
        self,
        execution_input: Any = None,
        *,
        input_json: str | None = None,
        name: str | None = None,
        state_machine: str | None = None,
    ) -> str:
        """Start an execution with ``execution_input`` (any JSON value) or the raw ``input_json`` text.

        ``state_machine`` is the logical id of the state machine to start; the envelope's by default.
        """
        text = (
            input_json if input_json is not None else json.dumps(execution_input, ensure_ascii=False)
        )  # UTF-8, as a client sends it
        arn = self.physical_id(state_machine) if state_machine else self.state_machine_arn
        return self.sfn.start_execution(stateMachineArn=arn, name=name or uuid.uuid4().hex, input=text)["executionArn"]

    def wait_for(self, execution_arn: str, timeout: float = 120.0) -> ExecutionResult:
        """Poll until the execution has finished, then return its outcome and history.

        Step Functions neither describes Express executions nor keeps their history: their outcome is
        read where an operator reads it (CloudWatch Logs), which here is moto's own record.
        """
        deadline = time.monotonic() + timeout
        while True:
            ended = self._ends.count
            description = self.execution_description(execution_arn)
            if description["status"] not in UNFINISHED:
                break
            if time.monotonic() > deadline:
                raise ExecutionDidNotFinish(f"{execution_arn} still {description['status']} after {timeout}s")
            # Woken by any execution's end; looks again after 50 ms anyway, for an end not counted.
            self._ends.wait_after(ended, timeout=0.05)
        return finished_execution(self.sfn, description, with_history=not is_express_arn(execution_arn))

    def execution_description(self, execution_arn: str) -> dict[str, Any]:
        """DescribeExecution's answer; for an Express execution, which it refuses, the same fields from its logs
        (moto's record)."""
        if is_express_arn(execution_arn):
            return express_outcome(execution_arn)
        return dict(self.sfn.describe_execution(executionArn=execution_arn))

    def run(
        self,
        execution_input: Any = None,
        *,
        input_json: str | None = None,
        timeout: float = 120.0,
        state_machine: str | None = None,
    ) -> ExecutionResult:
        """Start one execution (of the envelope, or of ``state_machine``) and wait for it to finish."""
        return self.wait_for(
            self.start_execution(execution_input, input_json=input_json, state_machine=state_machine), timeout
        )

    def record_id(self, key: str, state_machine: str | None = None) -> str:
        """The record id of ``key``: as it is if already scoped, else under the scope of ``state_machine`` (the
        envelope's)."""
        if SCOPE_SEPARATOR in key:
            return key
        if state_machine is None and self.envelope is not self:
            return self.envelope.record_id(key)
        scope = (
            self.parameters.get("IdempotencyScope")
            or self.physical_id(state_machine or ENVELOPE_STATE_MACHINE).rsplit(":", 1)[-1]
        )
        return f"{scope}{SCOPE_SEPARATOR}{key}"

    def get_record(self, key: str, state_machine: str | None = None) -> dict[str, Any] | None:
        """The idempotency record of ``key`` (a record id, or a bare key of ``state_machine``'s scope) as plain
        Python values, or None (strongly consistent read)."""
        record_id = self.record_id(key, state_machine)
        item = self.dynamodb.get_item(TableName=self.table_name, Key={"id": {"S": record_id}}, ConsistentRead=True).get(
            "Item"
        )
        return None if item is None else {name: _DESERIALIZE(value) for name, value in item.items()}

    def records(self) -> list[dict[str, Any]]:
        """Every item in the table."""
        items = self.dynamodb.scan(TableName=self.table_name, ConsistentRead=True)["Items"]
        return [{name: _DESERIALIZE(value) for name, value in item.items()} for item in items]

    def _stop_running_executions(self) -> None:
        # A still-running execution, or an event still being delivered, would send its AWS calls to
        # the real endpoints once moto is gone.
        for arn in self._state_machine_types:
            for execution in self.sfn.list_executions(stateMachineArn=arn, statusFilter="RUNNING")["executions"]:
                if is_express_arn(execution["executionArn"]):
                    # No API stops an Express execution; the emulator ends it, or it would outlive moto.
                    stop_express_execution(execution["executionArn"])
                else:
                    self.sfn.stop_execution(executionArn=execution["executionArn"])
        time.sleep(0.05)
        self.events.wait_until_delivered()


@contextlib.contextmanager
def _quiet_interpreter() -> Iterator[None]:
    # The interpreter logs every failed state with its whole parse tree; the history has the facts.
    interpreter_log = logging.getLogger("moto.stepfunctions.parser")
    level = interpreter_log.level
    interpreter_log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        interpreter_log.setLevel(level)


def _placeholder_zip() -> bytes:
    # moto needs code to create a function; the adapter imports the real handler from CodeUri instead.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "Runs in process: see emulator/adapters/")
    return buffer.getvalue()


def cold_start(module: ModuleType) -> None:
    """Make what a handler module makes on its first call (its cached ``deployment()``, as the envelope's handlers
    have), now, while its stack's environment is set.

    Functions share this process's environment, which holds a stack's variables only while it is
    deployed: made now, each function's settings are those it was deployed with, whatever stack
    is deployed later; and a stack deployed with contradictory parameters is refused at once
    (``IdempotencyConfigurationError``), where Lambda would refuse its first call.
    """
    made_on_first_call = getattr(module, COLD_START_FACTORY, None)
    if callable(made_on_first_call):
        made_on_first_call()


def _fake_aws_environment() -> dict[str, str]:
    return {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        # mock_aws does not intercept a client whose endpoint is configured (AWS_ENDPOINT_URL, as
        # when the suite runs against a local endpoint, or a profile's endpoint_url): ignore them.
        "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true",
    }
