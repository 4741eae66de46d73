"""Cold import of each envelope handler, beside a bare boto3 handler, measured side by side.

Timings on a shared machine drift, so they are never compared with a fixed number of
milliseconds from another run: every module is imported in a fresh ``python -I``, the modules
taking turns (interleaved, the order rotated each round), and each median is given as a ratio to
the bare handler's median from the same rounds. The bare handler imports boto3 and creates its
client at import; the envelope's handlers make theirs on their first call (``Deployment``), so the
ratio is the cost of what they import: boto3, Powertools and the layer.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.options import BenchError
from bench.targets import KEY_MODULE_MAX_MS, TAKE_HANDLER_MAX_RATIO, Target
from tools.template import Template

# The take function: the first call of every execution, so its cold start is the one that counts.
TAKE_FUNCTION = "AcquireLockFunction"
FRONT_DOOR_FUNCTION = "FrontDoorFunction"
# The handlers held to the bare boto3 handler's import time: every execution calls the take first,
# and every call through the front door calls it.
RATIO_TARGETED = (TAKE_FUNCTION, FRONT_DOOR_FUNCTION)
KEY_MODULE = "idempotency.key"
BARE = "bare boto3 handler"
BARE_HANDLER = '''"""A handler with nothing but boto3 and a client created at import."""
import boto3

dynamodb = boto3.client("dynamodb")


def lambda_handler(event, context):
    return {}
'''

_IMPORT_PROBE = """
import importlib, json, sys, time
sys.path[:0] = json.loads(sys.argv[1])
sys.stderr.write("bench: import starts\\n")
start = time.perf_counter()
importlib.import_module(sys.argv[2])
print(time.perf_counter() - start)
"""
_IMPORT_MARK = "bench: import starts"


@dataclass(frozen=True)
class ImportSubject:
    """A module to import cold, as Lambda would: its import roots and its environment."""

    label: str
    module: str
    roots: tuple[Path, ...]
    environment: Mapping[str, str] = field(default_factory=dict)


@dataclass
class ImportTiming:
    subject: ImportSubject
    runs_ms: list[float]
    largest_imports_ms: dict[str, float] = field(default_factory=dict)
    ratio_to_bare: float | None = None
    target: Target | None = None

    @property
    def median_ms(self) -> float:
        return statistics.median(self.runs_ms)


@dataclass
class ColdStart:
    """Every subject's timings from the same interleaved rounds."""

    timings: list[ImportTiming]
    rounds: int

    def of(self, label: str) -> ImportTiming:
        return next(timing for timing in self.timings if timing.subject.label == label)


def handler_subjects(
    template: Template, environments: Mapping[str, Mapping[str, str]], functions: Sequence[str]
) -> list[ImportSubject]:
    """Each function's handler module, with its layers and its deployed environment."""
    subjects = []
    for logical_id in functions:
        module = template.function_properties(logical_id)["Handler"].rpartition(".")[0]
        roots = tuple(template.import_roots(logical_id))
        subjects.append(ImportSubject(logical_id, module, roots, dict(environments.get(logical_id, {}))))
    return subjects


def key_module_subject(template: Template) -> ImportSubject:
    """The key module alone, its layer on sys.path."""
    return ImportSubject(f"{KEY_MODULE} alone", KEY_MODULE, tuple(template.import_roots(TAKE_FUNCTION)[1:]))


def measure_cold_start(subjects: Sequence[ImportSubject], rounds: int, breakdown_of: Sequence[str] = ()) -> ColdStart:
    """Import every subject and the bare handler ``rounds`` times each, interleaved; ratios to the bare handler.

    One unmeasured import of each first writes the .pyc files. ``breakdown_of`` names the subjects
    whose largest imports are profiled once more with ``-X importtime``.
    """
    with tempfile.TemporaryDirectory(prefix="bench-bare-") as folder:
        (Path(folder) / "bare_handler.py").write_text(BARE_HANDLER, encoding="utf-8")
        everything = [ImportSubject(BARE, "bare_handler", (Path(folder),)), *subjects]
        for subject in everything:
            _import_seconds(subject)
        runs: dict[str, list[float]] = {subject.label: [] for subject in everything}
        for round_index in range(rounds):
            shift = round_index % len(everything)
            for subject in everything[shift:] + everything[:shift]:
                runs[subject.label].append(_import_seconds(subject) * 1000)
        timings = [ImportTiming(subject, runs[subject.label]) for subject in everything]
        for timing in timings:
            if timing.subject.label in breakdown_of:
                timing.largest_imports_ms = _largest_imports(timing.subject)
    bare = statistics.median(runs[BARE])
    for timing in timings[1:]:
        timing.ratio_to_bare = timing.median_ms / bare
        if timing.subject.label in RATIO_TARGETED:
            timing.target = Target(
                "import time / bare boto3 handler's", round(timing.ratio_to_bare, 2), TAKE_HANDLER_MAX_RATIO, "x"
            )
        elif timing.subject.module == KEY_MODULE:
            timing.target = Target("", round(timing.median_ms, 1), KEY_MODULE_MAX_MS, "ms")
    return ColdStart(timings, rounds)


def _command(subject: ImportSubject, *flags: str) -> list[str]:
    return [
        sys.executable,
        *flags,
        "-I",
        "-c",
        _IMPORT_PROBE,
        json.dumps([str(root) for root in subject.roots]),
        subject.module,
    ]


def _import_seconds(subject: ImportSubject) -> float:
    return float(_run(_command(subject), subject).stdout)


def _run(command: Sequence[str], subject: ImportSubject) -> subprocess.CompletedProcess[str]:
    environment = {**_minimal_environment(), **subject.environment}
    completed = subprocess.run(command, env=environment, capture_output=True, text=True, check=False, timeout=120)
    if completed.returncode != 0:
        raise BenchError(f"importing {subject.module} ({subject.label}) failed:\n{completed.stderr[-2000:]}")
    return completed


def _minimal_environment() -> dict[str, str]:
    # No credentials are needed to import: clients are only created, never called.
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "SYSTEMROOT", "TMPDIR")
    return {
        **{name: os.environ[name] for name in keep if name in os.environ},
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }


def _largest_imports(subject: ImportSubject, count: int = 4) -> dict[str, float]:
    """Where the import time goes: the module's direct imports that took longest, and its own code.

    ``importlib.import_module`` itself is not in the ``-X importtime`` log, so the imports its
    module makes are the outermost entries after the probe's mark (cumulative times); what
    remains of the total is the module's own code (clients and loggers created at import).
    """
    profiled = _run(_command(subject, "-X", "importtime"), subject)
    total_ms = float(profiled.stdout) * 1000
    entries = []
    for line in profiled.stderr.split(_IMPORT_MARK, 1)[-1].splitlines():
        parts = line.split("|")
        if not line.startswith("import time:") or len(parts) != 3 or not parts[1].strip().isdigit():
            continue  # the header line, or anything else on stderr
        name = parts[2]
        entries.append((len(name) - len(name.lstrip()), name.strip(), int(parts[1]) / 1000))
    if not entries:
        return {}
    outermost = min(depth for depth, _, _ in entries)
    direct = [(name, ms) for depth, name, ms in entries if depth == outermost]
    largest = dict(sorted(direct, key=lambda entry: entry[1], reverse=True)[:count])
    largest["(own code)"] = max(0.0, total_ms - sum(ms for _, ms in direct))
    return largest
