"""Import a function's or a layer's module as Lambda would, from the template's import roots.

Used by the emulator (to call handlers in process), by tools (the records tool keys inputs and
changes records with the layer's own code) and by tests. It depends on nothing but the standard
library.
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

Handler = Callable[[Any, Any], Any]

_IMPORT_LOCK = threading.Lock()


def load_module(import_roots: Path | Sequence[Path], module_name: str) -> ModuleType:
    """Import ``module_name`` as Lambda would: freshly, in isolation, from a function's import roots.

    ``import_roots`` is the function's ``CodeUri`` folder followed by the content of its layers
    (Lambda puts a Python layer's content on ``sys.path`` after the function's own code). Modules
    loaded from them are kept out of ``sys.modules`` afterwards, so two functions may both have an
    ``app.py`` and each stack gets module-level state (clients, settings read from the
    environment) of its own.
    """
    (module,) = load_modules(import_roots, module_name)
    return module


def load_modules(import_roots: Path | Sequence[Path], *module_names: str) -> tuple[ModuleType, ...]:
    """Like ``load_module``, for several modules imported together, as one Lambda process would.

    They share the modules they import, so an exception class one of them raises is the class
    the others catch (two ``load_module`` calls would give two copies of it).
    """
    roots = [import_roots] if isinstance(import_roots, Path) else list(import_roots)
    local_names = {
        path.stem if path.suffix == ".py" else path.name
        for root in roots
        for path in root.iterdir()
        if path.suffix == ".py" or (path / "__init__.py").exists()
    }

    def is_local(name: str) -> bool:
        return name.split(".", 1)[0] in local_names

    with _IMPORT_LOCK:
        shadowed = {name: module for name, module in sys.modules.items() if is_local(name)}
        for name in shadowed:
            del sys.modules[name]
        sys.path[:0] = [str(root) for root in roots]
        try:
            return tuple(importlib.import_module(name) for name in module_names)
        finally:
            del sys.path[: len(roots)]
            for name in [name for name in sys.modules if is_local(name)]:
                del sys.modules[name]
            sys.modules.update(shadowed)


def load_handler(import_roots: Path | Sequence[Path], handler: str) -> Handler:
    """Import the ``handler`` of a template function ("module.function", as in ``Handler:``)."""
    module_name, _, function_name = handler.rpartition(".")
    handler_function: Handler = getattr(load_module(import_roots, module_name), function_name)
    return handler_function
