"""Serve the stack as a local AWS endpoint on 127.0.0.1, for the AWS CLI, SDKs and the test suite.

    python -m emulator.server                                   # what `make serve` runs: port 4566
    python -m emulator.server --port 0 --outputs-file out.json  # any free port, written to the file
    python -m emulator.server --time-scale 0.01                 # Wait and Retry 100 times shorter
    python -m emulator.server --parameter-overrides PollIntervalSeconds=2 WaitTimeoutSeconds=20
    python -m emulator.server --template ../orders-app/template.yaml   # your own app (make serve TEMPLATE=...)

``template.yaml`` (or ``--template``: an app of your own, with the envelope nested in it) is
deployed exactly as ``OfflineStack`` deploys it (same code, same in-process
Lambda handlers, atomic conditional writes and scaled waits), but into moto's HTTP server instead
of moto's in-process mock, so any client can call it with ``--endpoint-url``: Step Functions,
DynamoDB, Lambda, IAM and CloudFormation. A CloudFormation stack with the template's outputs and
the parameter values is registered under the stack name, and each nested application as a nested
stack of it (``AWS::CloudFormation::Stack``, with its own outputs and parameters), so ``aws
cloudformation describe-stacks``, the records tool and the integration suite
(``AWS_SAM_STACK_NAME`` + ``AWS_ENDPOINT_URL``) find the resources as they would on AWS. Its
region is us-east-1; any credentials are accepted.

Time: by default (``--time-scale 1``) ``Wait`` states and ``Retry`` intervals last their real
seconds, as on AWS: a waiting execution looks again every ``PollIntervalSeconds``. Tests and quick
tries use a small scale (0.01 turns the 10 s poll into 0.1 s); the execution timeout is never scaled.

Ctrl-C (or SIGTERM) stops the executions still running, then the server.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import logging
import os
import signal
import sys
import threading
import urllib.request
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from unittest import mock

from moto.core.config import default_user_config
from moto.server import ThreadedMotoServer

from emulator.demo import FRESH_EVENT
from emulator.stack import REGION, OfflineStack
from tools.layer_import import load_module
from tools.template import PROJECT_ROOT, TEMPLATE_PATH, TemplateParameterError, UnsupportedTemplateFeature

HOST = "127.0.0.1"
DEFAULT_PORT = 4566
DEFAULT_STACK_NAME = "idempotent-workflow"
# Where the nested stacks' templates are kept, as sam deploy keeps them in its artifacts bucket.
NESTED_TEMPLATES_BUCKET = "emulator-nested-stack-templates"
CREDENTIALS_HINT = "export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=" + REGION

_key = load_module(PROJECT_ROOT / "envelope" / "layers" / "idempotency", "idempotency.key")


class EndpointUnavailable(OSError):
    """The server could not listen on the port asked for (most often: it is in use)."""


class _LocalMotoServer(ThreadedMotoServer):
    """moto's threaded server, except that a port it cannot bind is an error instead of a hang."""

    bind_failed = False

    def _server_entry(self) -> None:
        try:
            super()._server_entry()
        except (OSError, SystemExit):
            # werkzeug prints why and exits the server thread before it is ready, so start()
            # would wait for ever.
            self.bind_failed = True
            self._server_ready_event.set()


class ServedStack(OfflineStack):
    """``OfflineStack`` served over HTTP on 127.0.0.1: a local AWS endpoint with the stack deployed.

    Args:
        parameters: template parameter overrides (names as in ``template.yaml``).
        port: the TCP port; 0 picks a free one (see ``endpoint_url``).
        time_scale: factor applied to ASL ``Wait`` seconds and ``Retry`` intervals (1: real time).
        stack_name: the CloudFormation stack name registered with the outputs.
        template_path: the SAM template to deploy.
        environment: extra environment variables for the functions.
    """

    def __init__(
        self,
        parameters: Mapping[str, Any] | None = None,
        *,
        port: int = DEFAULT_PORT,
        time_scale: float = 1.0,
        stack_name: str = DEFAULT_STACK_NAME,
        template_path: Path = TEMPLATE_PATH,
        environment: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(
            parameters,
            time_scale=time_scale,
            stack_name=stack_name,
            template_path=template_path,
            environment=environment,
        )
        self.port = port
        self._templates_bucket_created = False

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:<port>``, once the server listens."""
        if self._endpoint_url is None:
            raise RuntimeError("The server is not running: use ServedStack as a context manager")
        return self._endpoint_url

    def __enter__(self) -> ServedStack:
        super().__enter__()
        try:
            self._register_cloudformation_stack()
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        return self

    @contextlib.contextmanager
    def _aws_backend(self) -> Iterator[None]:
        server = _LocalMotoServer(ip_address=HOST, port=self.port, verbose=False)
        server.start()
        if server.bind_failed:
            raise EndpointUnavailable(
                f"Cannot serve on {HOST}:{self.port} (is the port in use? --port 0 picks a free one)"
            )
        try:
            port = server.get_host_and_port()[1]
            self._endpoint_url = f"http://{HOST}:{port}"
            served = {
                # The ASL interpreter sends its service integrations to localhost:$MOTO_PORT when
                # nothing intercepts boto3 in process.
                "MOTO_PORT": str(port),
                # The functions' own boto3 clients (created on their first call) call the endpoint too.
                "AWS_ENDPOINT_URL": self._endpoint_url,
                "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "false",
            }
            # moto's configuration is process-wide: restore it when the server stops.
            with mock.patch.dict(os.environ, served), mock.patch.dict(default_user_config):
                _post_json(f"{self._endpoint_url}/moto-api/config", {"stepfunctions": {"execute_state_machine": True}})
                yield
        finally:
            server.stop()
            self._endpoint_url = None

    def _register_cloudformation_stack(self) -> None:
        """A stack with the template's outputs and this deployment's parameter values (no resources of its
        own), and each nested application as its nested stack, as CloudFormation has them on AWS."""
        cloudformation = self._client("cloudformation")
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*WaitConditionHandle.*")
            cloudformation.create_stack(
                StackName=self.stack_name,
                TemplateBody=json.dumps(_registered_body(self, self._nested_stack_resources())),
                Parameters=[{"ParameterKey": name, "ParameterValue": value} for name, value in self.parameters.items()],
            )

    def _nested_stack_resources(self, stack: OfflineStack | None = None) -> dict[str, Any]:
        """``AWS::CloudFormation::Stack`` resources for the nested applications of ``stack`` (this one by
        default), their bodies in a bucket of the endpoint, as ``sam deploy`` uploads them."""
        stack = stack or self
        if not stack.applications:
            return {}
        s3 = self._client("s3")
        if not self._templates_bucket_created:
            s3.create_bucket(Bucket=NESTED_TEMPLATES_BUCKET)
            self._templates_bucket_created = True
        resources: dict[str, Any] = {}
        for logical_id, nested in stack.applications.items():
            key = f"{nested.stack_name}.json"
            s3.put_object(
                Bucket=NESTED_TEMPLATES_BUCKET,
                Key=key,
                Body=json.dumps(_registered_body(nested, self._nested_stack_resources(nested))),
            )
            resources[logical_id] = {
                "Type": "AWS::CloudFormation::Stack",
                "Properties": {
                    "TemplateURL": f"https://{NESTED_TEMPLATES_BUCKET}.s3.amazonaws.com/{key}",
                    "Parameters": dict(nested.parameters),
                },
            }
        return resources

    def nested_stacks(self) -> dict[str, dict[str, Any]]:
        """Each nested application (by its path of logical ids, e.g. ``Envelope``) with its outputs."""
        found: dict[str, dict[str, Any]] = {}

        def visit(stack: OfflineStack, prefix: str) -> None:
            for logical_id, nested in stack.applications.items():
                path = f"{prefix}{logical_id}"
                found[path] = {"Outputs": dict(nested.outputs)}
                visit(nested, f"{path}.")

        visit(self, "")
        return found

    def running_executions(self) -> list[str]:
        """ARNs of this stack's executions that are still running."""
        pages = self.sfn.get_paginator("list_executions").paginate(
            stateMachineArn=self.state_machine_arn, statusFilter="RUNNING"
        )
        return [execution["executionArn"] for page in pages for execution in page["executions"]]

    def description(self) -> dict[str, Any]:
        """What a client needs to find the stack: the content of ``--outputs-file``."""
        return {
            "StackName": self.stack_name,
            "EndpointUrl": self.endpoint_url,
            "Region": REGION,
            "Outputs": dict(self.outputs),
            # A nested envelope's outputs (its IdempotentWorkflowArn), by the logical id that nests it.
            "NestedStacks": self.nested_stacks(),
            "Parameters": dict(self.parameters),
            "TimeScale": self.time_scale,
        }


def _registered_body(stack: OfflineStack, nested_stacks: Mapping[str, Any]) -> dict[str, Any]:
    """The template registered for ``stack``: its parameters and outputs, and its nested stacks."""
    declared = stack.template.body.get("Outputs", {})
    outputs: dict[str, dict[str, str]] = {}
    for name, value in stack.outputs.items():
        outputs[name] = {"Value": value}
        if declared[name].get("Description"):
            outputs[name]["Description"] = declared[name]["Description"]
    return {
        "Description": (
            "Outputs and parameters of the stack served by emulator.server; its resources are not managed here."
        ),
        "Parameters": {name: {"Type": "String"} for name in stack.parameters},
        # CloudFormation wants one resource; moto stores this type without creating anything.
        "Resources": {"ServedByEmulator": {"Type": "AWS::CloudFormation::WaitConditionHandle"}, **nested_stacks},
        "Outputs": outputs,
    }


def announcement(stack: ServedStack, outputs_file: Path | None) -> str:
    """What the server prints when ready: where it is, the outputs (a nested envelope's too), and commands to paste."""
    url = stack.endpoint_url
    arn = stack.state_machine_arn
    execution_arn = arn.replace(":stateMachine:", ":execution:", 1)
    nested = {
        f"{path}.{name}": value
        for path, found in stack.nested_stacks().items()
        for name, value in found["Outputs"].items()
    }
    shown = {**stack.outputs, **nested}
    width = max((len(name) for name in shown), default=0)
    lines = [
        f"Local AWS endpoint ready: {url} (region {REGION}; any credentials are accepted)",
        f"Stack {stack.stack_name} from {stack.template.path}; Wait and Retry time x{stack.time_scale:g}",
        *(f"  {name:<{width}}  {value}" for name, value in shown.items()),
    ]
    if outputs_file is not None:
        lines.append(f"  (written to {outputs_file})")
    if stack.template.path.resolve() == TEMPLATE_PATH.resolve():
        # This project's own stack: its sample input, and the record it makes.
        fresh_input = f"file://{FRESH_EVENT.relative_to(PROJECT_ROOT)}"
        fresh_id = stack.record_id(_key.compute_idempotency_key(json.loads(FRESH_EVENT.read_text(encoding="utf-8"))))
        record_hint = (
            f"aws dynamodb get-item --endpoint-url {url} --table-name {stack.table_name} "
            f"""--key '{{"id": {{"S": "{fresh_id}"}}}}'"""
        )
    else:
        fresh_input = "file://your-input.json"
        record_hint = (
            f'make records ARGS="--endpoint-url {url} --stack-name {stack.stack_name} show --input your-input.json"'
        )
    lines += [
        "",
        "Try it from the repository root:",
        f"  {CREDENTIALS_HINT}",
        f"  aws stepfunctions start-execution --endpoint-url {url} --state-machine-arn {arn} --name first-run "
        f"--input {fresh_input}",
        f"  aws stepfunctions start-execution --endpoint-url {url} --state-machine-arn {arn} --name repeat "
        f"--input {fresh_input}",
        f"  aws stepfunctions describe-execution --endpoint-url {url} --execution-arn {execution_arn}:repeat",
        f"  {record_hint}",
    ]
    front_door = stack.envelope.outputs.get("FrontDoorFunctionName")
    if front_door:
        lines.append(
            f"  aws lambda invoke --endpoint-url {url} --function-name {front_door} "
            f"--cli-binary-format raw-in-base64-out --payload {fresh_input} answer.json"
            "   # the front door: the stored result, or the execution it started"
        )
    lines += [
        f"  aws cloudformation describe-stacks --endpoint-url {url} --stack-name {stack.stack_name}",
        f'  make records ARGS="--endpoint-url {url} --stack-name {stack.stack_name} list"',
    ]
    if stack.template.path.resolve() == TEMPLATE_PATH.resolve():
        lines.append(f"  AWS_SAM_STACK_NAME={stack.stack_name} AWS_ENDPOINT_URL={url} make pytest")
    lines += ["", "Ctrl-C stops it."]
    return "\n".join(lines)


def parse_overrides(pairs: Sequence[str]) -> dict[str, str]:
    """``["Name=value", ...]`` as ``sam deploy --parameter-overrides`` takes them."""
    overrides: dict[str, str] = {}
    for pair in pairs:
        name, separator, value = pair.partition("=")
        if not separator or not name:
            raise ValueError(f"{pair!r} is not Name=value")
        overrides[name] = value
    return overrides


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m emulator.server",
        description=(
            "Serve a SAM template's stack (template.yaml, or --template) on 127.0.0.1 as a local AWS endpoint "
            "(moto server, in this process)."
        ),
    )
    parser.add_argument(
        "--template",
        type=Path,
        default=TEMPLATE_PATH,
        help=(
            "the SAM template to serve (default: this project's template.yaml; an app of your own with the envelope "
            "nested works too)"
        ),
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"TCP port on {HOST} (default {DEFAULT_PORT}; 0: any free port)"
    )
    parser.add_argument(
        "--parameter-overrides", nargs="+", default=[], metavar="NAME=VALUE", help="template parameter values"
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        help="factor on Wait and Retry seconds (default 1: real time, as on AWS; tests use 0.01)",
    )
    parser.add_argument(
        "--stack-name", default=DEFAULT_STACK_NAME, help=f"stack name for CloudFormation (default {DEFAULT_STACK_NAME})"
    )
    parser.add_argument(
        "--outputs-file", type=Path, help="write the endpoint, outputs and parameters there as JSON once ready"
    )
    parser.add_argument("--log-level", default="WARNING", help="the functions' POWERTOOLS_LOG_LEVEL (default WARNING)")
    parser.add_argument(
        "--metrics", action="store_true", help="let the functions print their metrics (EMF JSON) on every call"
    )
    parser.add_argument("--log-requests", action="store_true", help="log every HTTP request")
    args = parser.parse_args(argv)
    try:
        overrides = parse_overrides(args.parameter_overrides)
    except ValueError as error:
        parser.error(str(error))
    if args.time_scale <= 0:
        parser.error("--time-scale must be positive")
    if not args.template.is_file():
        parser.error(f"--template {args.template}: no such file")
    if not args.log_requests:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)

    stop = threading.Event()
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signal_number, lambda *_: stop.set())
    try:
        stack = ServedStack(
            overrides,
            port=args.port,
            time_scale=args.time_scale,
            stack_name=args.stack_name,
            template_path=args.template.resolve(),
            # A person reads this terminal: one metric JSON line per Lambda call only when asked for.
            environment={
                "POWERTOOLS_LOG_LEVEL": args.log_level,
                "POWERTOOLS_METRICS_DISABLED": "false" if args.metrics else "true",
            },
        )
        with stack:
            if args.outputs_file is not None:
                _write_atomically(args.outputs_file, json.dumps(stack.description(), indent=2) + "\n")
            print(announcement(stack, args.outputs_file), flush=True)
            try:
                while not stop.wait(0.5):
                    pass
                running = stack.running_executions()
                print(
                    f"\nStopping: {len(running)} execution(s) still running will be stopped, then the server.",
                    flush=True,
                )
            finally:
                if args.outputs_file is not None:
                    args.outputs_file.unlink(missing_ok=True)
    except (TemplateParameterError, UnsupportedTemplateFeature, EndpointUnavailable) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1 if isinstance(error, EndpointUnavailable) else 2
    print("Stopped.", flush=True)
    # Everything has stopped: spare the exit a garbage collection of moto's large object graph (about a second).
    gc.freeze()
    return 0


def _post_json(url: str, body: Any) -> None:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def _write_atomically(path: Path, text: str) -> None:
    # A reader polling for the file sees it whole or not at all.
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


if __name__ == "__main__":
    sys.exit(main())
