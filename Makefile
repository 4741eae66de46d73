# Everything runs offline: no AWS account, no Docker. A fresh machine needs only Python 3.11+.
#
#   make demo    set up (.venv and .venv-scan), then run the workflow on the in-process emulator (moto)
#   make test    set up, then run every check: lint, validate, security scan, the test suite
#   make test-slow  set up, then run only the slow tier (tests at scale, marked slow), which make test leaves out
#   make bench   set up, then measure cost and latency per execution on the emulator (BENCH_ARGS=--json or --quick)
#   make serve   set up, then serve the stack as a local AWS endpoint on 127.0.0.1:4566 (Ctrl-C stops it);
#                TEMPLATE=/path/to/your-app/template.yaml serves your own app, the envelope nested in it
#   make records ARGS="--stack-name idempotent-workflow list"   the records tool, with the project's Python
#   make build / make deploy / make invoke FUNCTION=AcquireLockFunction   SAM CLI (it is installed in .venv/bin)
#
# Setup is a virtualenv in .venv with requirements-dev.txt and every function's and layer's requirements.txt,
# and one in .venv-scan for checkov (make venv makes both); each is redone only when its requirements change.

PYTHON ?= python3
VENV ?= .venv
PYTEST_ARGS ?=
BENCH_ARGS ?=
# pytest-xdist, one worker more than the cores, --dist loadfile: each module's stack fixture is then
# deployed by one worker only. The extra worker runs while the others wait on executions (scaled waits,
# held calls): on two idle cores make test took 2 min 57 s with three workers, 3 min 48 s with two and
# 3 min 6 s with four. PYTEST_WORKERS=0 runs it serially in one process (easier to debug).
PYTEST_WORKERS ?= $(shell $(PYTHON) -c 'import os; print(len(os.sched_getaffinity(0)) + 1 if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1) + 1)')
PYTEST_DIST ?= loadfile
# e.g. make serve SERVE_ARGS="--time-scale 0.01 --parameter-overrides PollIntervalSeconds=2"
# make serve TEMPLATE=/path/to/your-app/template.yaml serves an app of your own (the envelope nested in it).
SERVE_ARGS ?=
TEMPLATE ?= template.yaml
# make records ARGS="..."; make deploy DEPLOY_ARGS="--parameter-overrides WorkflowType=EXPRESS ..."
ARGS ?=
DEPLOY_ARGS ?=
# make invoke FUNCTION=<logical id> [EVENT=events/<file>.json] [ENV_VARS=events/env.json]; needs Docker
FUNCTION ?=
EVENT ?=
ENV_VARS ?= events/env.json

BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed
# checkov pins a boto3 that conflicts with aws-sam-cli's, so it has a virtualenv of its own.
SCAN_VENV ?= .venv-scan
SCAN_STAMP := $(SCAN_VENV)/.installed
REQUIREMENTS := requirements-dev.txt $(sort $(wildcard functions/*/requirements.txt envelope/functions/*/requirements.txt envelope/layers/*/requirements.txt examples/*/functions/*/requirements.txt))
# The example apps (examples/<name>/template.yaml), each nesting the reusable envelope.
EXAMPLE_TEMPLATES := $(sort $(wildcard examples/*/template.yaml))

export SAM_CLI_TELEMETRY := 0
export PIP_DISABLE_PIP_VERSION_CHECK := 1

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

.PHONY: help venv install demo serve records test checks test-slow lint validate validate-template validate-asl scan pytest bench build deploy invoke clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

venv: $(STAMP) $(SCAN_STAMP) ## Create .venv (and checkov's .venv-scan) and install the dependencies (only when requirements change)
install: venv

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed; found " + sys.version.split()[0] + " at " + sys.executable + ". Run: make PYTHON=/path/to/python3.11 ...")'
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(REQUIREMENTS) | $(PY)
	@echo "Installing dependencies into $(VENV) (a minute or two the first time)..."
	$(PY) -m pip install --quiet $(addprefix -r ,$(REQUIREMENTS))
	@touch $@

demo: venv ## Set up (both virtualenvs), then deploy the stack into the emulator and run the workflow (first run, repeat, record)
	$(PY) -m emulator.demo

serve: $(STAMP) ## Serve the stack (or TEMPLATE=path/to/your/template.yaml) as a local AWS endpoint on 127.0.0.1:4566
	$(PY) -m emulator.server --template $(TEMPLATE) $(SERVE_ARGS)

records: $(STAMP) ## The records tool: list, show, release, delete (make records ARGS="--stack-name NAME list")
	$(PY) scripts/records.py $(ARGS)

# The suite spends much of its time waiting on executions (declared waits, held calls), which leaves
# the cores idle: lint, validate and scan run beside it, at a lower priority (nice) so that they take
# what the suite leaves, each template's checks side by side, and
# each check's output is printed whole once the suite's is (make --output-sync). Any failure fails
# the target, and is named on the last line.
CHECKS_LOG := .checks.log

test: $(STAMP) $(SCAN_STAMP) ## Run every check: lint, validate and the security scan beside the whole test suite
	@nice -n 10 $(MAKE) --no-print-directory --keep-going --jobs=4 --output-sync=target checks > $(CHECKS_LOG) 2>&1 & checks=$$!; \
	suite=0; $(MAKE) --no-print-directory pytest || suite=$$?; \
	checked=0; wait $$checks || checked=$$?; \
	echo; echo "---------------- lint, validate, scan (run beside the suite) ----------------"; cat $(CHECKS_LOG); rm -f $(CHECKS_LOG); \
	if [ $$suite -ne 0 ] || [ $$checked -ne 0 ]; then \
	  echo "make test FAILED:$$( [ $$suite -eq 0 ] || echo ' the suite;')$$( [ $$checked -eq 0 ] || echo ' lint, validate or scan (output above)')" >&2; exit 1; \
	fi; echo "make test: lint, validate, scan and the suite passed"

checks: lint validate scan

lint: $(STAMP) ## ruff (lint, complexity and format), and mypy on the functions (each with its layers), the layer, the emulator and scripts
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(PY) scripts/typecheck.py

$(SCAN_STAMP): requirements-scan.txt
	$(PYTHON) -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/python -m pip install --quiet -r requirements-scan.txt
	@touch $@

scan: $(SCAN_STAMP) ## Security scan of template.yaml, envelope/template.yaml (and its monitoring.yaml) and the examples' templates (checkov; skipped checks are explained in .checkov.yaml)
	$(SCAN_VENV)/bin/checkov --file template.yaml --file envelope/template.yaml --file envelope/monitoring.yaml $(addprefix --file ,$(EXAMPLE_TEMPLATES)) --config-file .checkov.yaml

validate: validate-template validate-asl ## Lint the templates (sam validate --lint) and the ASL (statelint + moto)

# template.yaml, the reusable envelope (envelope/template.yaml) that wraps a workflow by ARN, the alarms and
# dashboard both nest (envelope/monitoring.yaml; cfn-lint checks resources under a false Condition too), and the examples.
# One target per template, so that make -j checks them side by side.
LINTED_TEMPLATES := template.yaml envelope/template.yaml envelope/monitoring.yaml $(EXAMPLE_TEMPLATES)
ASL_TEMPLATES := template.yaml envelope/template.yaml $(EXAMPLE_TEMPLATES)
.PHONY: $(addprefix validate-template/,$(LINTED_TEMPLATES)) $(addprefix validate-asl/,$(ASL_TEMPLATES))

validate-template: $(addprefix validate-template/,$(LINTED_TEMPLATES))
$(addprefix validate-template/,$(LINTED_TEMPLATES)): validate-template/%: $(STAMP)
	$(BIN)/sam validate --lint --template $* --region us-east-1

validate-asl: $(addprefix validate-asl/,$(ASL_TEMPLATES))
# The reusable envelope wraps a workflow given by ARN: its parameter has no default.
validate-asl/envelope/template.yaml: ASL_ARGS := \
  --parameter-overrides WorkflowArn=arn:aws:states:us-east-1:123456789012:stateMachine:WrappedWorkflow
$(addprefix validate-asl/,$(ASL_TEMPLATES)): validate-asl/%: $(STAMP)
	$(PY) scripts/validate_asl.py --template $* $(ASL_ARGS)

# The slow tier (tests marked slow: hundreds of concurrent executions) runs apart, with make test-slow.
# Branch coverage of the envelope's layer, counted in the tests and inside the emulator's Lambda
# functions alike (they run in the workers' processes); the floor is fail_under in pyproject.toml.
# COVERAGE= leaves it out.
COVERAGE ?= --cov --cov-report=term-missing:skip-covered
pytest: $(STAMP)
	$(PY) -m pytest tests examples -m "not slow" -n $(PYTEST_WORKERS) --dist $(PYTEST_DIST) $(COVERAGE) $(PYTEST_ARGS)

test-slow: $(STAMP) ## Run only the slow tier: the tests at scale (e.g. 500 duplicates at a hot key), one process
	$(PY) -m pytest tests examples -m slow -n 0 $(PYTEST_ARGS)

bench: $(STAMP) ## Measure states, Lambda calls, DynamoDB requests and cost per execution, against the targets
	$(PY) -m bench $(BENCH_ARGS)

# Optional, not part of `test`. `sam build` without a container needs the template's runtime
# (python3.13) on PATH: tools/runtimes.py finds one (on PATH, or among pyenv's versions) and puts it first.
build: $(STAMP) ## sam build (finds python3.13 itself, on PATH or from pyenv; not needed offline)
	PATH="$$($(PY) -m tools.runtimes python3.13):$$PATH" $(BIN)/sam build --template template.yaml

deploy: build ## sam deploy --guided (the first time it asks, and saves the answers in samconfig.toml)
	$(BIN)/sam deploy --guided $(DEPLOY_ARGS)

# The event defaults to the function's sample, events/<CodeUri folder>.json; events/env.json sets
# the variables the stack would (put your stack's IdempotencyTableName output in it).
invoke: $(STAMP) ## sam local invoke FUNCTION with its sample event and events/env.json (needs Docker)
	@test -n "$(FUNCTION)" || { echo "usage: make invoke FUNCTION=<logical id> [EVENT=events/<file>.json]; functions: $$($(PY) -c 'from tools.template import Template; print(" ".join(Template.load().resources_of_type("AWS::Serverless::Function")))')" >&2; exit 2; }
	$(BIN)/sam local invoke $(FUNCTION) --template template.yaml --env-vars $(ENV_VARS) \
	  --event $${EVENT:-$$($(PY) -c 'import sys, pathlib; from tools.template import Template; print("events/" + pathlib.Path(Template.load().function_properties(sys.argv[1])["CodeUri"]).name + ".json")' $(FUNCTION))}

clean: ## Remove .venv, the SAM build and caches
	rm -rf $(VENV) $(SCAN_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
	find . -name __pycache__ -type d -not -path './.git/*' -prune -exec rm -rf {} +
