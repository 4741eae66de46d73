"""The report as a markdown table (``make bench``) or as JSON (``BENCH_ARGS=--json``)."""

from __future__ import annotations

import statistics
import sys
from collections import Counter
from dataclasses import asdict
from typing import Any

from bench.cold_start import ColdStart, ImportTiming
from bench.metering import Usage
from bench.paths import PathResult
from bench.prices import EXPRESS_ASSUMED_MEMORY_MB, PRICES_REGION, PRICES_SOURCE, PRICES_TAKEN
from bench.run import BenchReport
from bench.targets import Target, format_number
from bench.waiters import ContentionResult, ContentionSummary


def _usd(value: float) -> str:
    return f"{value:,.2f}"


def _targets(targets: list[Target]) -> tuple[str, str]:
    return "; ".join(target.describe() for target in targets) or "—", "; ".join(
        target.verdict() for target in targets
    ) or "—"


# ---------------------------------------------------------------------------- markdown
def render_markdown(report: BenchReport) -> str:
    lines = [
        "# Cost and latency per execution (offline emulator)",
        "",
        f"Prices: {PRICES_REGION} list prices, taken {PRICES_TAKEN} ({PRICES_SOURCE}); free tiers ignored.",
        _price_line(report),
        "",
        "## Standard workflow, per path",
        "",
        "| path | states entered (steps) | Lambda calls (envelope + steps) | DynamoDB requests | WRU / RRU "
        "| $/M transitions | $/M Lambda | $/M DynamoDB | $/M total | seed design | target | met? |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        *(_path_row(report, path) for path in report.paths),
        "",
        _mix_line(report),
        "",
        *_front_door_mix_lines(report),
        *_waiter_lines(report),
        "",
    ]
    if report.contention is not None:
        lines += _contention_lines(report.contention)
    if report.express is not None:
        lines += _express_lines(report, report.express)
    if report.cold_start is not None:
        lines += _cold_start_lines(report)
    lines += [*_unpriced_lines(report), *_notes(report)]
    return "\n".join(lines) + "\n"


def _price_line(report: BenchReport) -> str:
    prices = report.prices
    durations = ", ".join(
        f"{name} {spec.memory_mb} MB {spec.architecture} × {report.billed_ms[name]} ms"
        for name, spec in report.functions.items()
    )
    gb_second = ", ".join(
        f"{arch} ${price:.10f}".rstrip("0") + " per GB-s" for arch, price in prices.lambda_per_gb_second.items()
    )
    return (
        f"Standard ${prices.standard_per_1k_transitions} per 1,000 state transitions (billed transitions = states "
        f"entered); Express ${prices.express_per_million_requests:.2f} per 1M requests + "
        f"${prices.express_per_gb_second} per GB-s ({EXPRESS_ASSUMED_MEMORY_MB} MB assumed, duration rounded up to "
        f"100 ms); Lambda ${prices.lambda_per_million_requests:.2f} per 1M requests + {gb_second}, billed duration "
        f"per call = median measured in-process handler time rounded up to 1 ms ({durations}); DynamoDB on-demand "
        f"${prices.dynamodb_per_million_wru} per 1M WRU, ${prices.dynamodb_per_million_rru} per 1M RRU."
    )


def split_calls(report: BenchReport, usage: Usage) -> tuple[int, int]:
    envelope = sum(calls for name, calls in usage.lambda_calls.items() if report.functions[name].envelope)
    return envelope, sum(usage.lambda_calls.values()) - envelope


def _path_row(report: BenchReport, path: PathResult) -> str:
    usage, cost = path.usage, path.cost
    assert cost is not None
    envelope, steps = split_calls(report, usage)
    states = f"{usage.states_entered} ({usage.step_states})"
    if "owner_extra_states" in path.notes:
        states += f": waiter {path.notes['waiter_states_entered']}, owner {path.notes['owner_extra_states']:+d}"
    targets, verdicts = _targets(path.targets)
    cells = [
        path.label,
        states,
        f"{envelope} + {steps}",
        usage.dynamodb.describe(),
        f"{format_number(usage.dynamodb.wru)} / {format_number(usage.dynamodb.rru)}",
        _usd(cost.workflow),
        _usd(cost.lambda_),
        _usd(cost.dynamodb),
        _usd(cost.total),
        path.reference,
        targets,
        verdicts,
    ]
    return "| " + " | ".join(cells) + " |"


def _mix_line(report: BenchReport) -> str:
    mix = report.mix
    return (
        f"**Mix of {mix.hit_share:.0%} hits and {1 - mix.hit_share:.0%} fresh runs:** ${_usd(mix.cost.total)} per "
        f"million executions (transitions ${_usd(mix.cost.workflow)}, Lambda ${_usd(mix.cost.lambda_)}, DynamoDB "
        f"${_usd(mix.cost.dynamodb)}); {mix.states:.1f} states entered per execution on average."
    )


def _front_door_mix_lines(report: BenchReport) -> list[str]:
    if report.front_door_mix is None:
        return []
    through, target = report.front_door_mix
    return [
        f"**The same mix through the front door** (hits answered by one read, fresh runs started by it): "
        f"${_usd(through.cost.total)} per million calls (transitions ${_usd(through.cost.workflow)}, Lambda "
        f"${_usd(through.cost.lambda_)}, DynamoDB ${_usd(through.cost.dynamodb)}); {through.states:.1f} states entered "
        f"per call on average. Target {target.describe()}: {target.verdict()}.",
        "",
    ]


def _waiter_lines(report: BenchReport) -> list[str]:
    waiters = report.waiters
    growth = waiters.growth_per_10s
    latencies = waiters.latencies_declared_s
    walls_ms = ", ".join(f"{wall * 1000:.0f}" for wall in waiters.latencies_wall_s)
    return [
        f"**Waiter cost growth** per 10 s of waiting: {growth['states']:+.1f} states, {growth['lambda_calls']:+.1f} "
        f"Lambda calls, {growth['dynamodb_requests']:+.1f} DynamoDB requests. Target: "
        f"{waiters.growth_target.describe()}: {waiters.growth_target.verdict()}.",
        "",
        "**Waiter latency** after the owner finished, declared seconds (as on AWS): median "
        f"{statistics.median(latencies):.2f} s, worst {max(latencies):.2f} s over {len(latencies)} waiters (emulator "
        f"wall ms: {walls_ms}; time_scale {waiters.time_scale}). Target: {waiters.latency_target.describe()}: "
        f"{waiters.latency_target.verdict()}.",
    ]


def token_line(summary: ContentionSummary) -> str:
    used = (
        ", ".join(f"{length} characters ({count})" for length, count in sorted(summary.token_lengths.items()))
        or "none seen"
    )
    if summary.token_length_requested is None:
        return (
            "Task tokens: this emulator cannot set their length (no `OfflineStack(task_token_length=)`); "
            f"its own were used: {used}."
        )
    return f"Task tokens: {summary.token_length_requested} characters requested; received by the functions: {used}."


def _contention_lines(summary: ContentionSummary) -> list[str]:
    lines = [
        "## Contention: N duplicates of one input wait on one owner",
        "",
        "| N waiters | registered before release | woken by the save | DynamoDB requests (all N + 1) | WRU / RRU (all) "
        "| WRU / RRU per waiter | units per waiter | save → last waiter woken | business step calls | failed | "
        "distinct outputs | target | met? |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        *(_contention_row(row) for row in summary.rows),
        "",
    ]
    if summary.spread_target is not None:
        target = summary.spread_target
        lines.append(f"**Units per waiter as N grows:** target {target.describe()}: {target.verdict()}.")
    lines += [
        "",
        f"{token_line(summary)} Contention runs at time_scale {summary.time_scale} (real time), so that no waiter "
        "looks again on its own while hundreds register. Units per waiter = (units of the N + 1 executions − "
        "a lone fresh run's) / N. Times are the emulator's wall clock; counts are exact.",
        "",
    ]
    return lines


def _contention_row(row: ContentionResult) -> str:
    dynamodb, run = row.usage.dynamodb, row.run
    wake = f"{run.wake_all_s:.2f} s" if run.wake_all_s is not None else "no waiter woken"
    targets, verdicts = _targets(row.targets)
    cells = [
        str(row.waiters),
        str(run.registered_before_release),
        str(len(run.woken_at)),
        dynamodb.describe(),
        f"{format_number(dynamodb.wru)} / {format_number(dynamodb.rru)}",
        f"{row.wru_per_waiter:.2f} / {row.rru_per_waiter:.2f}",
        f"{row.units_per_waiter:.2f}",
        wake,
        str(row.step_calls),
        str(row.failed),
        str(row.distinct_outputs),
        targets,
        verdicts,
    ]
    return "| " + " | ".join(cells) + " |"


def _express_lines(report: BenchReport, paths: list[PathResult]) -> list[str]:
    lines = [
        "## Express variant, per path (WorkflowType=EXPRESS)",
        "",
        "| path | Lambda calls (envelope + steps) | DynamoDB requests | WRU / RRU | duration (emulator) "
        "| $/M requests + duration | $/M Lambda | $/M DynamoDB | $/M total | target | met? |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for path in paths:
        cost = path.cost
        assert cost is not None
        envelope, steps = split_calls(report, path.usage)
        dynamodb = path.usage.dynamodb
        targets, verdicts = _targets(path.targets)
        cells = [
            path.label,
            f"{envelope} + {steps}",
            dynamodb.describe(),
            f"{format_number(dynamodb.wru)} / {format_number(dynamodb.rru)}",
            f"{path.notes['duration_ms']:.0f} ms",
            _usd(cost.workflow),
            _usd(cost.lambda_),
            _usd(cost.dynamodb),
            _usd(cost.total),
            targets,
            verdicts,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def _cold_start_lines(report: BenchReport) -> list[str]:
    cold = report.cold_start
    assert cold is not None
    lines = [
        "## Cold start: each handler's import beside a bare boto3 handler",
        "",
        "| module | median | ratio to the bare boto3 handler | runs | target | met? |",
        "|---|---|---|---|---|---|",
    ]
    for timing in cold.timings:
        ratio = f"{timing.ratio_to_bare:.2f}x" if timing.ratio_to_bare is not None else "1 (reference)"
        target, verdict = _targets([timing.target] if timing.target else [])
        lines.append(
            f"| `{timing.subject.module}` ({timing.subject.label}) | {timing.median_ms:.1f} ms | {ratio} "
            f"| {len(timing.runs_ms)} | {target} | {verdict} |"
        )
    if report.key_hash is not None:
        key_hash = report.key_hash
        lines.append(
            f"| key of a {key_hash.input_bytes / 1024:.0f} KiB input (canonical JSON + SHA-256) | "
            f"{key_hash.median_ms:.2f} ms | — | {key_hash.runs} | {key_hash.target.describe()} | "
            f"{key_hash.target.verdict()} |"
        )
    lines.append("")
    for timing in cold.timings:
        if timing.largest_imports_ms:
            largest = ", ".join(f"{name} {ms:.0f} ms" for name, ms in timing.largest_imports_ms.items())
            lines.append(
                f"Largest imports of `{timing.subject.module}` ({timing.subject.label}; cumulative, `-X importtime`): "
                f"{largest}."
            )
    return [*lines, ""]


def _unpriced_lines(report: BenchReport) -> list[str]:
    unpriced = Counter[str]()
    for path in [*report.paths, *(report.express or [])]:
        unpriced.update({name: count for name, count in path.usage.dynamodb.unpriced.items() if count > 0})
    if not unpriced:
        return []
    return [
        f"Warning: request units not computed for {', '.join(sorted(unpriced))}: their DynamoDB cost is missing.",
        "",
    ]


def _notes(report: BenchReport) -> list[str]:
    return [
        "Notes:",
        "- States entered are counted from each execution's history (every `…StateEntered` event, Parallel branches "
        'included); "steps" are the states that invoked a business step\'s function (a function without the '
        "envelope's layer).",
        "- Waiter rows are the marginal cost of one waiter: its own execution plus whatever its owner did beyond a "
        'lone fresh run ("owner +n" states; Lambda and DynamoDB likewise). The seed\'s k is the number of 10 s polls '
        "it would make in the same wait. Timings vary with the machine's load; counts do not.",
        "- DynamoDB: every request that reached the emulator, from Lambda code and from the state machine's "
        "integration, billed by DynamoDB's rules: a write 1 WRU per started KB of the larger of the item before and "
        "after it; a write whose condition fails on the existing item; a read 1 RRU per started 4 KB strongly "
        "consistent, half eventually consistent; BatchGetItem and BatchWriteItem item by item; a Query page on its "
        "items' total size. Result sizes are the output's compact UTF-8 JSON.",
        f"- Emulator time: Wait states and Retry intervals last time_scale = {report.options.time_scale} × their "
        "declared seconds; declared time = wall time / time_scale for them, and a waiter has waited the declared "
        "`Seconds` of the Wait states it entered (one without Wait states: wall time / time_scale). Latency counts "
        "time in Wait states as declared and the rest as measured. Task timeouts are scaled too, never below 0.5 s; "
        "the machine's own `TimeoutSeconds` ten times less.",
        "- Express: Step Functions keeps no history of Express executions, so their states are neither billed nor "
        "counted; their duration is the emulator's wall time, an upper bound of AWS's for paths without waits.",
        "- Lambda duration is measured in process, where DynamoDB answers in microseconds; on AWS add its round trip "
        "(a few ms per call). Cold imports run in fresh `python -I`, every module in turn, the order rotated each "
        f"round ({sys.version.split()[0]} here; the functions run python3.13 on arm64), after one run that writes the "
        ".pyc files.",
    ]


# ---------------------------------------------------------------------------- JSON
def report_json(report: BenchReport) -> dict[str, Any]:
    return {
        "prices": {"region": PRICES_REGION, "taken": PRICES_TAKEN, "source": PRICES_SOURCE, **asdict(report.prices)},
        "options": {
            "quick": report.options.quick,
            "time_scale": report.options.time_scale,
            "contention_sizes": list(report.options.contention_sizes),
        },
        "functions": {
            name: {**asdict(spec), "billed_ms_per_call": report.billed_ms[name]}
            for name, spec in report.functions.items()
        },
        "paths": [path_json(report, path) for path in report.paths],
        "mix": {
            "hit_share": report.mix.hit_share,
            "states_entered": report.mix.states,
            "cost_per_million_usd": report.mix.cost.as_dict(),
        },
        "front_door_mix": None
        if report.front_door_mix is None
        else {
            "hit_share": report.front_door_mix[0].hit_share,
            "states_entered": report.front_door_mix[0].states,
            "cost_per_million_usd": report.front_door_mix[0].cost.as_dict(),
            "target": report.front_door_mix[1].as_dict(),
        },
        "waiters": {
            "growth_per_10s": report.waiters.growth_per_10s,
            "growth_target": report.waiters.growth_target.as_dict(),
            "latencies_declared_s": report.waiters.latencies_declared_s,
            "latencies_wall_s": report.waiters.latencies_wall_s,
            "latency_target": report.waiters.latency_target.as_dict(),
        },
        "contention": None if report.contention is None else contention_json(report.contention),
        "express": None if report.express is None else [path_json(report, path) for path in report.express],
        "cold_start": None if report.cold_start is None else cold_start_json(report.cold_start),
        "key_hash": None
        if report.key_hash is None
        else {
            "input_bytes": report.key_hash.input_bytes,
            "median_ms": report.key_hash.median_ms,
            "runs": report.key_hash.runs,
            "target": report.key_hash.target.as_dict(),
        },
    }


def path_json(report: BenchReport, path: PathResult) -> dict[str, Any]:
    envelope, steps = split_calls(report, path.usage)
    dynamodb = path.usage.dynamodb
    return {
        "path": path.key,
        "label": path.label,
        "states_entered": path.usage.states_entered,
        "step_states": path.usage.step_states,
        "envelope_states": path.usage.envelope_states,
        "lambda_calls": path.usage.lambda_calls,
        "lambda_envelope_calls": envelope,
        "lambda_step_calls": steps,
        "dynamodb_requests": dict(dynamodb.requests),
        "dynamodb_refused": dict(dynamodb.refused),
        "wru": dynamodb.wru,
        "rru": dynamodb.rru,
        "cost_per_million_usd": path.cost.as_dict() if path.cost else None,
        "seed_reference": path.reference,
        "targets": [target.as_dict() for target in path.targets],
        **path.notes,
    }


def contention_json(summary: ContentionSummary) -> dict[str, Any]:
    return {
        "task_token_length_requested": summary.token_length_requested,
        "task_token_lengths_seen": {str(length): count for length, count in summary.token_lengths.items()},
        "time_scale": summary.time_scale,
        "spread_target": summary.spread_target.as_dict() if summary.spread_target else None,
        "rows": [
            {
                "waiters": row.waiters,
                "registered_before_release": row.run.registered_before_release,
                "woken_by_save": len(row.run.woken_at),
                "wake_all_s": row.run.wake_all_s,
                "dynamodb_requests": dict(row.usage.dynamodb.requests),
                "dynamodb_refused": dict(row.usage.dynamodb.refused),
                "wru": row.usage.dynamodb.wru,
                "rru": row.usage.dynamodb.rru,
                "wru_per_waiter": row.wru_per_waiter,
                "rru_per_waiter": row.rru_per_waiter,
                "units_per_waiter": row.units_per_waiter,
                "states_entered": row.usage.states_entered,
                "lambda_calls": row.usage.lambda_calls,
                "business_step_calls": row.step_calls,
                "failed": row.failed,
                "distinct_outputs": row.distinct_outputs,
                "targets": [target.as_dict() for target in row.targets],
            }
            for row in summary.rows
        ],
    }


def cold_start_json(cold: ColdStart) -> dict[str, Any]:
    def timing(value: ImportTiming) -> dict[str, Any]:
        return {
            "label": value.subject.label,
            "module": value.subject.module,
            "median_ms": value.median_ms,
            "runs_ms": value.runs_ms,
            "ratio_to_bare": value.ratio_to_bare,
            "largest_imports_ms": value.largest_imports_ms,
            "target": value.target.as_dict() if value.target else None,
        }

    return {"rounds": cold.rounds, "modules": [timing(value) for value in cold.timings]}
