"""Work moto and botocore repeat for every stack, client and execution, done once per process instead.

Neither changes what any call answers; they only take out CPU time that a suite of a thousand tests
on two cores spent again and again (profiled: a quarter of the suite's CPU time):

* ``shared_service_models``: moto's mock gives each stack (and each unit test's ``mock_aws``) a new
  default boto3 session, and each session loads the service models, endpoints and partitions again
  from botocore's JSON files; moto's Step Functions makes a new client (so a new session's worth of
  loading, when the session is new) for every task it runs. Here every session reads one loader,
  whose cache keeps each file parsed once per process.
* ``task_clients_reused``: moto's Step Functions makes a new boto3 client for every task it runs
  (each Lambda call, each SDK call): an event system copied, an SSL context, the endpoint rules.
  Here one client per region, service and endpoint serves every task (botocore's clients are
  thread-safe), made as moto makes it.
* ``parsed_json_paths``: moto parses each JSONPath (``InputPath``, ``ResultSelector``'s ``.$`` fields,
  ...) with jsonpath-ng on every use, building a new LR parser each time. Here each path is parsed
  once; a parsed path is an immutable expression that ``find`` only reads.
* ``parsed_definitions``: moto parses a state machine's definition with ANTLR on every execution
  (and when it is created). Here the parse tree of each definition is kept, and each execution
  still builds its own evaluation components from it (moto's ``Preprocessor``), so no state is
  shared between executions: only the lexing and parsing, which read the text and nothing else.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Iterator
from typing import Any
from unittest import mock

import botocore.loaders
import botocore.session
from moto.core.models import botocore_stubber
from moto.settings import moto_server_port
from moto.stepfunctions.parser.asl.parse import asl_parser
from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor
from moto.stepfunctions.parser.asl.utils import boto_client, json_path

# One loader per data path for the whole process: every stack's session shares its parsed files.
_shared_loader = functools.cache(botocore.loaders.create_loader)
# Definitions are few (a stack's state machines, the tests' own); bounded anyway.
MAX_PARSED_DEFINITIONS = 256


@contextlib.contextmanager
def work_done_once() -> Iterator[None]:
    """All four, as a stack (and the test session) enters them."""
    with shared_service_models(), task_clients_reused(), parsed_json_paths(), parsed_definitions():
        yield


@contextlib.contextmanager
def shared_service_models() -> Iterator[None]:
    """Every botocore session of the process reads its service models through one loader per data path."""
    with mock.patch.object(botocore.session, "create_loader", _shared_loader):
        yield


@contextlib.contextmanager
def task_clients_reused() -> Iterator[None]:
    """moto's ``boto_client_for`` hands out one client per region, service and endpoint, made once."""
    original = boto_client.boto_client_for

    @functools.cache
    def client(region: str, service: str, endpoint: str | None) -> Any:
        return original(region, service)

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        # moto's own choice of endpoint (it ignores state_credentials): in process while its mock
        # intercepts, else its server's port.
        return client(region, service, None if botocore_stubber.enabled else str(moto_server_port()))

    # Each of moto's task modules imported the function by name: each name is replaced.
    importers = [
        module
        for name, module in list(sys.modules.items())
        if name.startswith("moto.stepfunctions") and getattr(module, "boto_client_for", None) is original
    ]
    with contextlib.ExitStack() as patches:
        for module in importers:
            patches.enter_context(mock.patch.object(module, "boto_client_for", boto_client_for))
        yield


@contextlib.contextmanager
def parsed_json_paths() -> Iterator[None]:
    """moto's ``extract_json`` parses each JSONPath once per process."""
    parse = vars(json_path)["parse"]  # jsonpath-ng's parse, imported there by name
    with mock.patch.object(json_path, "parse", functools.lru_cache(maxsize=4096)(parse)):
        yield


@contextlib.contextmanager
def parsed_definitions() -> Iterator[None]:
    """moto's ASL parser lexes and parses each definition once; every call still gets fresh components."""
    parser = asl_parser.AmazonStateLanguageParser
    original_parse = parser.parse

    # A definition that does not parse raises here, every time, as before (exceptions are not cached).
    @functools.lru_cache(maxsize=MAX_PARSED_DEFINITIONS)
    def tree_of(definition: str) -> Any:
        return original_parse(definition)[1]

    def parse(definition: str) -> tuple[Any, Any]:
        tree = tree_of(definition)
        return Preprocessor().visit(tree), tree

    with mock.patch.object(parser, "parse", staticmethod(parse)):
        yield
