"""Run the idempotent workflow offline and show what idempotency means, in a few lines per run.

    python -m emulator.demo            # what `make demo` runs
    python -m emulator.demo --event my_input.json

It deploys ``template.yaml`` into the in-process emulator (moto: no AWS account, no Docker) and

1. runs the workflow on ``events/execution_fresh.json``: the business steps run;
2. runs it again with the same input: the steps do not run again, the stored result comes back;
3. prints the idempotency record kept in DynamoDB;
4. shows a key chosen with ``idempotencyKeyJmespath`` (``events/execution_jmespath_key.json``):
   another input with the same selected values is a repeat;
5. shows a failing run (``events/execution_forced_failure.json``): FAILED is recorded, and a
   rerun of the same input runs the steps again (after the failed run's quiet period, when its
   other branches' calls were still running at the failure);
6. and 7. deploy the two example apps (``examples/``, each nesting the envelope) and run each
   twice, a registration event and an S3 upload (``emulator/demo_examples.py``): the work runs once.

Exits with status 1 when the workflow does not behave as described (the demo checks itself).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import textwrap
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from emulator import demo_examples
from emulator.stack import QUIET_FUNCTIONS, ExecutionResult, OfflineStack, business_step_functions
from tools.template import PROJECT_ROOT, Template

EVENTS = PROJECT_ROOT / "events"
FRESH_EVENT = EVENTS / "execution_fresh.json"
JMESPATH_EVENT = EVENTS / "execution_jmespath_key.json"
FAILURE_EVENT = EVENTS / "execution_forced_failure.json"
BUSINESS_STEP_FUNCTIONS = business_step_functions(Template.load())
QUIET_LAMBDAS = QUIET_FUNCTIONS
# The example steps' functions return in milliseconds. A failed run whose other branches were still
# running keeps its key quiet for LongestCallSeconds of real time, while the emulator's waits are
# scaled down: the default (60 s) would outlast the rerun's whole wait budget here.
DEMO_PARAMETERS = {"LongestCallSeconds": 3}
WIDTH = 100
_NBSP = "\u00a0"  # keeps a state name on one line when wrapping


class Demo:
    """Runs executions on a deployed stack, prints them, and collects unmet expectations."""

    def __init__(self, stack: OfflineStack) -> None:
        self.stack = stack
        self.unmet: list[str] = []

    # ---------------------------------------------------------------- helpers
    def step_calls(self) -> int:
        """Business-step Lambda invocations so far (the envelope's own function is not counted)."""
        return sum(self.stack.lambdas.invocations(name) for name in BUSINESS_STEP_FUNCTIONS)

    def expect(self, condition: bool, what: str) -> None:
        if not condition:
            self.unmet.append(what)
            print(f"   !! NOT AS EXPECTED: {what}")

    def run(self, label: str, execution_input: Any) -> tuple[ExecutionResult, int]:
        """Run one execution, print a short account of it; return it and its business-step calls."""
        before = self.step_calls()
        result = self.stack.run(execution_input)
        calls = self.step_calls() - before
        states = result.states_entered
        print(f"-- {label}")
        print(_field("status", result.status))
        if result.error is not None:
            print(_field("error", f"{result.error}: {_cause_message(result.cause)}"))
        print(_field("states entered", f"{len(states)}: " + " -> ".join(_unbreakable(state) for state in states)))
        print(_field("business steps", f"{calls} Lambda call(s) ({self.step_calls()} in total so far)"))
        if result.output is not None:
            print(_field("output", _json_one_line(result.output)))
        return result, calls

    def record_of(self, result: ExecutionResult) -> dict[str, Any] | None:
        """The idempotency record owned by ``result``'s execution."""
        for record in self.stack.records():
            if record.get("executionid") == result.execution_arn:
                return record
        return None

    # ---------------------------------------------------------------- the demo
    def first_and_repeat(self, event_path: Path) -> None:
        execution_input = _load(event_path)
        print(f"\nInput ({_relative(event_path)}): {json.dumps(execution_input)}\n")

        first, first_calls = self.run("Run 1: a new input", execution_input)
        self.expect(first.status == "SUCCEEDED", f"run 1 SUCCEEDED (got {first.status}: {first.error} {first.cause})")
        self.expect(first_calls > 0, "run 1 ran the business steps")

        second, second_calls = self.run("Run 2: the same input again", execution_input)
        self.expect(second.status == "SUCCEEDED", f"run 2 SUCCEEDED (got {second.status})")
        self.expect(second_calls == 0, f"run 2 ran no business step (it ran {second_calls})")
        self.expect(second.output == first.output, "run 2's output is deep-equal to run 1's")
        if second_calls == 0 and second.output == first.output:
            print("   => the steps did NOT run again; the result came from DynamoDB, deep-equal to run 1's output")

        record = self.record_of(first)
        print("\n-- The idempotency record in DynamoDB (one item per key):")
        if record is None:
            self.expect(False, "run 1 left an idempotency record")
            return
        print(textwrap.indent(json.dumps(record, indent=2, default=_json_default), "   "))
        self.expect(record.get("executionstatus") == "SUCCESS", "the record is SUCCESS")
        stored = record.get("executionresult")
        self.expect(
            isinstance(stored, str) and json.loads(stored) == first.output,
            "the record's executionresult is run 1's output as a JSON string",
        )

    def jmespath_key(self, event_path: Path) -> None:
        execution_input = _load(event_path)
        expression = execution_input.get("idempotencyKeyJmespath")
        print(f"\nKey from part of the input: idempotencyKeyJmespath = {expression!r} ({_relative(event_path)})\n")
        first, first_calls = self.run("Run 1", execution_input)
        self.expect(first.status == "SUCCEEDED", f"JMESPath run 1 SUCCEEDED (got {first.status})")

        reordered = json.loads(json.dumps(execution_input, sort_keys=True))
        second, second_calls = self.run("Run 2: the same request, its fields in another order", reordered)
        self.expect(second.status == "SUCCEEDED", f"JMESPath run 2 SUCCEEDED (got {second.status})")
        self.expect(first_calls > 0 and second_calls == 0, "only JMESPath run 1 ran the business steps")
        self.expect(second.output == first.output, "JMESPath run 2 returned run 1's output")

        variant = copy.deepcopy(execution_input)
        variant["top"] = "a different value outside the key"
        third, third_calls = self.run("Run 3: same key values, another payload", variant)
        self.expect(
            third.status == "SUCCEEDED" and third.output == first.output,
            f"JMESPath run 3 returned run 1's output (got {third.status} {third.error or ''})",
        )
        self.expect(third_calls == 0, "JMESPath run 3 ran no business step")
        if first_calls > 0 and second_calls == 0 and third_calls == 0:
            print(
                "   => the key is made of the selected values only: the rest of the input may differ between\n"
                "      repeats, as in the original pattern. To refuse a repeat whose other fields differ, name\n"
                "      them in PayloadValidationJmespath (off by default, as in Powertools)."
            )

    def forced_failure(self, event_path: Path) -> None:
        execution_input = _load(event_path)
        print(f'\nA step that fails ({_relative(event_path)}, "forceFailure": true)\n')
        first, _ = self.run("Run 1", execution_input)
        self.expect(first.status == "FAILED", f"the forced failure FAILED (got {first.status})")
        record = self.record_of(first)
        status = None if record is None else record.get("executionstatus")
        error = None if record is None else record.get("error")
        print(_field("record", f"executionstatus={status}, error={error}"))
        self.expect(status == "FAILED", f"the record is FAILED (got {status})")
        self.expect(error == first.error, f"the record's error is the execution's ({error} vs {first.error})")
        quiet_until = None if record is None else record.get("leaseexpiry")
        if quiet_until is not None:
            # Timing decides this, on AWS as here: the failing branch ended before the other branches' calls.
            print(
                "   => the other branches' Lambda calls were still running when the step failed: the key stays\n      "
                f"quiet until {quiet_until} (LongestCallSeconds={self.stack.parameters['LongestCallSeconds']} after "
                "the failure); the demo waits for it before the rerun"
            )
            time.sleep(max(0.0, int(quiet_until) + 1 - time.time()))

        second, second_calls = self.run("Run 2: the same input again", execution_input)
        self.expect(second_calls > 0, "a FAILED record does not block: the rerun ran the steps again")
        self.expect(second.status == "FAILED", f"the forced rerun FAILED again (got {second.status})")
        if second_calls > 0:
            print("   => a FAILED record is not a cached answer: the steps ran again (and, forced, failed again)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the idempotent workflow offline (moto, in process).")
    parser.add_argument("--event", type=Path, default=FRESH_EVENT, help="execution input for runs 1 and 2")
    parser.add_argument("--short", action="store_true", help="only runs 1 and 2 and the record")
    args = parser.parse_args(argv)

    print("Idempotent Step Functions workflow, offline: template.yaml deployed into moto, in process")
    with OfflineStack(DEMO_PARAMETERS, environment=QUIET_LAMBDAS) as stack:
        print(f"State machine: {stack.state_machine_arn}")
        print(f"Table:         {stack.table_name}")
        demo = Demo(stack)
        demo.first_and_repeat(args.event)
        if not args.short:
            demo.jmespath_key(JMESPATH_EVENT)
            demo.forced_failure(FAILURE_EVENT)
    if not args.short:
        # Each example is an app of its own: deployed as its own stack, after the root one.
        demo_examples.user_registration(demo)
        demo_examples.sensor_file_upload(demo)

    print()
    if demo.unmet:
        print(f"DEMO FAILED: {len(demo.unmet)} expectation(s) not met:", file=sys.stderr)
        for what in demo.unmet:
            print(f"  - {what}", file=sys.stderr)
        return 1
    print("Demo OK: every run behaved as the contract says.")
    return 0


def _load(path: Path) -> Any:
    with path.open(encoding="utf-8") as stream:
        return json.load(stream)


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def _field(label: str, text: str) -> str:
    """``label: text`` indented under the run's heading, wrapped to WIDTH, names kept whole."""
    wrapped = textwrap.fill(
        text,
        width=WIDTH,
        initial_indent=f"   {label + ':':<17}",
        subsequent_indent=" " * 20,
        break_long_words=False,
        break_on_hyphens=False,
    )
    return wrapped.replace(_NBSP, " ")


def _json_one_line(value: Any) -> str:
    """Compact JSON that wraps only between an object's top-level members."""
    if not isinstance(value, dict):
        return json.dumps(value)
    members = (_unbreakable(f"{json.dumps(name)}: {json.dumps(item)}") for name, item in value.items())
    return "{" + ", ".join(members) + "}"


def _unbreakable(text: str) -> str:
    return text.replace(" ", _NBSP)


def _cause_message(cause: str | None) -> str:
    """A Lambda error's cause is its JSON payload: show its message."""
    try:
        payload = json.loads(cause or "")
    except json.JSONDecodeError:
        return cause or ""
    return str(payload.get("errorMessage", cause)) if isinstance(payload, dict) else str(cause)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


if __name__ == "__main__":
    sys.exit(main())
