"""Draw a state machine definition as a Mermaid flowchart (GitHub renders it in the README).

    python scripts/asl_diagram.py            # print the diagram of the project's state machine
    python scripts/asl_diagram.py --write    # replace the diagram block in README.md

The README's block sits between ``<!-- diagram:start -->`` and ``<!-- diagram:end -->``; a test
fails when it differs from what this script draws from the ASL file.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ASL_PATH = PROJECT_ROOT / "statemachine" / "idempotent_workflow.asl.json"
README_PATH = PROJECT_ROOT / "README.md"
START_MARK, END_MARK = "<!-- diagram:start -->", "<!-- diagram:end -->"

# Numeric substitutions stand unquoted in the file (": ${Name}"); quote them to parse the JSON.
_UNQUOTED_PLACEHOLDER = re.compile(r":\s*\$\{(\w+)\}")


def load_definition(path: Path = ASL_PATH) -> dict[str, Any]:
    definition: dict[str, Any] = json.loads(_UNQUOTED_PLACEHOLDER.sub(r': "${\1}"', path.read_text(encoding="utf-8")))
    return definition


class _Drawing:
    def __init__(self) -> None:
        self.lines: list[str] = ["flowchart TD"]
        self.ids: dict[str, str] = {}

    def node_id(self, name: str) -> str:
        return self.ids.setdefault(name, f"s{len(self.ids)}")

    def edge(self, source: str, target: str, label: str | None = None) -> None:
        arrow = f' -- "{_escape(label)}" --> ' if label else " --> "
        self.lines.append(f"    {source}{arrow}{target}")

    def states(self, states: dict[str, Any], indent: str = "    ") -> None:
        for name, state in states.items():
            node = self.node_id(name)
            kind = state["Type"]
            if kind == "Parallel":
                self.lines.append(f'{indent}subgraph {node}["{_escape(name)}"]')
                for branch in state["Branches"]:
                    self.states(branch["States"], indent + "    ")
                self.lines.append(f"{indent}end")
            else:
                self.lines.append(f"{indent}{node}{_shape(kind, name)}")

    def transitions(self, states: dict[str, Any], top_level: bool = True) -> None:
        for name, state in states.items():
            node = self.node_id(name)
            for branch in state.get("Branches", []):
                self.transitions(branch["States"], top_level=False)
            if top_level and (state.get("End") or state["Type"] == "Succeed"):
                self.edge(node, "finish")
            for choice in state.get("Choices", []):
                self.edge(node, self.node_id(choice["Next"]), _condition(choice))
            if "Default" in state:
                self.edge(node, self.node_id(state["Default"]), "otherwise")
            if "Next" in state:
                self.edge(node, self.node_id(state["Next"]))
            for catcher in state.get("Catch", []):
                self.edge(node, self.node_id(catcher["Next"]), "catch " + ", ".join(catcher["ErrorEquals"]))


def draw(definition: dict[str, Any]) -> str:
    """Return the Mermaid source of ``definition``'s top level and its Parallel branches."""
    drawing = _Drawing()
    drawing.lines.append("    start((Start))")
    drawing.states(definition["States"])
    drawing.edge("start", drawing.node_id(definition["StartAt"]))
    drawing.lines.append("    finish((End))")
    drawing.transitions(definition["States"])
    return "\n".join(drawing.lines) + "\n"


def readme_block(definition: dict[str, Any]) -> str:
    return f"{START_MARK}\n```mermaid\n{draw(definition)}```\n{END_MARK}"


def replace_block(readme: str, block: str) -> str:
    start, end = readme.index(START_MARK), readme.index(END_MARK) + len(END_MARK)
    return readme[:start] + block + readme[end:]


def _shape(kind: str, name: str) -> str:
    label = _escape(name)
    return {
        "Choice": f'{{"{label}"}}',
        "Wait": f'[/"{label}"/]',
        "Succeed": f'(["{label}"])',
        "Fail": f'(["{label}"])',
        "Pass": f'>"{label}"]',
    }.get(kind, f'["{label}"]')


def _condition(choice: dict[str, Any]) -> str:
    field = choice.get("Variable", "").rsplit(".", 1)[-1]
    for operator, value in choice.items():
        if operator.endswith("Equals") and not operator.endswith("PathEquals"):
            return f"{field} = {value}"
        if operator not in ("Variable", "Next"):
            return f"{field} {operator} {json.dumps(value)}"
    return "choice"


def _escape(text: str) -> str:
    return text.replace('"', "#quot;")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update the diagram block in README.md")
    arguments = parser.parse_args(argv)
    block = readme_block(load_definition())
    if not arguments.write:
        print(block)
        return 0
    README_PATH.write_text(replace_block(README_PATH.read_text(encoding="utf-8"), block), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
