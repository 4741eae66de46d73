"""Find the Python a template's functions run on (``Runtime: python3.13``), which ``sam build`` needs on PATH.

    python -m tools.runtimes python3.13     # prints the folder to put first on PATH, or says why not

``sam build`` without a container builds each function with the interpreter its runtime names
(``python3.13``), found on ``PATH``. A machine whose ``python3`` is another version often has it
from pyenv, where the ``python3.13`` shim only answers when that version is selected: the folder
of the real interpreter is found instead, so that nothing needs selecting by hand.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


class RuntimeNotFound(LookupError):
    """No working interpreter for the runtime on this machine."""


def _works(executable: str | Path) -> bool:
    try:
        return (
            subprocess.run([str(executable), "--version"], capture_output=True, timeout=30, check=False).returncode == 0
        )
    except OSError:
        return False


def runtime_bin_dir(runtime: str) -> Path:
    """The folder of a working ``runtime`` executable (``python3.13``): on PATH, else among pyenv's versions."""
    on_path = shutil.which(runtime)
    if on_path and _works(on_path):
        return Path(on_path).parent
    version = runtime.removeprefix("python")
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    for candidate in sorted((pyenv_root / "versions").glob(f"{version}*/bin/{runtime}"), reverse=True):
        if _works(candidate):
            return candidate.parent
    raise RuntimeNotFound(
        f"sam build needs {runtime} (the template's Runtime) and none works here: install Python {version} "
        f"(e.g. pyenv install {version}) or build in a container (sam build --use-container, needs Docker)"
    )


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tools.runtimes python3.13", file=sys.stderr)
        return 2
    try:
        print(runtime_bin_dir(argv[0]))
    except RuntimeNotFound as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
