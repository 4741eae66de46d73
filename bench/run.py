"""The whole bench: which stacks are deployed, which paths run on each, in what order."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench.cold_start import TAKE_FUNCTION, ColdStart, handler_subjects, key_module_subject, measure_cold_start
from bench.deployment import EXPRESS_PARAMETERS, MeteredStack, takes_task_token_length
from bench.front_door import HIT as FRONT_DOOR_HIT
from bench.front_door import MISS as FRONT_DOOR_MISS
from bench.front_door import add_cost_targets, front_door_mix, measure_front_door
from bench.key_hash import HashTiming, measure_key_hash
from bench.options import BenchOptions
from bench.paths import Mix, PathResult, measure_express, measure_result_sizes, measure_runs, mix
from bench.prices import FunctionSpec, Prices
from bench.targets import Target
from bench.waiters import ContentionSummary, WaiterSummary, measure_contention, measure_waiters, samples
from tools.template import Template


@dataclass
class StandardRun:
    """What the paths on the Standard stack used, and what the stack told about its functions."""

    paths: list[PathResult]
    waiters: WaiterSummary
    functions: dict[str, FunctionSpec]
    billed_ms: dict[str, int]
    environments: dict[str, dict[str, str]]  # each envelope function's deployed environment


@dataclass
class BenchReport:
    options: BenchOptions
    prices: Prices
    paths: list[PathResult]
    waiters: WaiterSummary
    mix: Mix
    billed_ms: dict[str, int]
    functions: dict[str, FunctionSpec]
    # Every call through the front door: the same share of hits, answered by one read.
    front_door_mix: tuple[Mix, Target] | None = None
    contention: ContentionSummary | None = None
    express: list[PathResult] | None = None
    cold_start: ColdStart | None = None
    key_hash: HashTiming | None = None


def measure_standard(
    bench: MeteredStack, options: BenchOptions, prices: Prices, sample: Callable[[], int]
) -> StandardRun:
    """Every path of single executions and single waiters on the Standard stack, priced."""
    paths = measure_runs(bench)
    waiter_paths, waiters = measure_waiters(bench, paths[0], options, sample)
    paths += waiter_paths
    paths += measure_result_sizes(bench, options.result_sizes, sample)
    paths += measure_front_door(bench, paths[0], sample())
    for path in paths:
        path.cost = bench.cost(path.usage, prices, billed_ms=path.billed_ms)
    add_cost_targets(next(path for path in paths if path.key == FRONT_DOOR_HIT))
    return StandardRun(
        paths=paths,
        waiters=waiters,
        functions=bench.functions,
        billed_ms=bench.billed_ms(),
        environments={
            name: bench.function_environment(name) for name, spec in bench.functions.items() if spec.envelope
        },
    )


def build_report(options: BenchOptions, prices: Prices, run: StandardRun) -> BenchReport:
    by_key = {path.key: path for path in run.paths}
    return BenchReport(
        options=options,
        prices=prices,
        paths=run.paths,
        waiters=run.waiters,
        mix=mix(by_key["hit"], by_key["fresh"]),
        front_door_mix=front_door_mix(by_key[FRONT_DOOR_HIT], by_key[FRONT_DOOR_MISS]),
        billed_ms=run.billed_ms,
        functions=run.functions,
    )


# Waiters look again on their own only after 300 s: while hundreds register (far slower on the
# emulator than on Step Functions), none looks again, so each row counts one wait per waiter.
CONTENTION_PARAMETERS = {"PollIntervalSeconds": 300}


def run_bench(options: BenchOptions) -> BenchReport:
    """Deploy each stack in turn (Standard, Standard at real time for contention, Express), then time imports."""
    prices, sample = Prices(), samples()
    token_length = options.task_token_length if takes_task_token_length() else None
    with MeteredStack.deployed(options.time_scale, task_token_length=token_length) as bench:
        standard = measure_standard(bench, options, prices, sample)
    report = build_report(options, prices, standard)
    if options.contention_sizes:
        with MeteredStack.deployed(
            options.contention_time_scale, CONTENTION_PARAMETERS, task_token_length=token_length
        ) as contended:
            report.contention, hit_after = measure_contention(contended, options, sample, token_length)
            hit_after.cost = contended.cost(hit_after.usage, prices, billed_ms=hit_after.billed_ms)
        report.paths.append(hit_after)
    if options.express:
        with MeteredStack.deployed(options.time_scale, EXPRESS_PARAMETERS, task_token_length=token_length) as express:
            report.express = measure_express(express, prices)
    template = Template.load()
    envelope = [name for name, spec in standard.functions.items() if spec.envelope]
    subjects = [*handler_subjects(template, standard.environments, envelope), key_module_subject(template)]
    report.cold_start = measure_cold_start(subjects, options.import_runs, breakdown_of=(TAKE_FUNCTION,))
    report.key_hash = measure_key_hash(template.import_roots(TAKE_FUNCTION), options.hash_runs)
    return report
