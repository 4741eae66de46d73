"""Draw a state machine definition as a Mermaid flowchart (GitHub renders it in the README).

    python scripts/asl_diagram.py                    # print the diagram of the project's state machine
    python scripts/asl_diagram.py --asl FILE.asl.json    # print the diagram of another definition
    python scripts/asl_diagram.py --write            # redraw every diagram block of README.md and docs/

The README's block sits between ``<!-- diagram:start -->`` and ``<!-- diagram:end -->``; a block
for another definition names its file: ``<!-- diagram:start statemachine/other.asl.json -->``.
Tests fail when a block differs from what this script draws from its ASL file.
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
# Documents whose diagram blocks --write redraws.
DOCUMENTS = (
    README_PATH,
    PROJECT_ROOT / "docs" / "examples.md",
    PROJECT_ROOT / "docs" / "child-workflows.md",
    PROJECT_ROOT / "examples" / "user_registration" / "README.md",
    PROJECT_ROOT / "examples" / "sensor_file" / "README.md",
)
START_MARK, END_MARK = "<!-- diagram:start -->", "<!-- diagram:end -->"
# A block's start mark, with the definition it draws when that is not the project's state machine.
_START = re.compile(r"<!-- diagram:start(?: (\S+))? -->")

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
            if kind in ("Parallel", "Map"):
                label = name if kind == "Parallel" else f"{name} (for each item)"
                self.lines.append(f'{indent}subgraph {node}["{_escape(label)}"]')
                for branch in _branches(state):
                    self.states(branch["States"], indent + "    ")
                self.lines.append(f"{indent}end")
            else:
                self.lines.append(f"{indent}{node}{_shape(kind, name)}")

    def transitions(self, states: dict[str, Any], top_level: bool = True) -> None:
        for name, state in states.items():
            node = self.node_id(name)
            for branch in _branches(state):
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


def document_block(asl_path: str) -> str:
    """The diagram block of the definition at ``asl_path`` (relative to the project root)."""
    diagram = draw(load_definition(PROJECT_ROOT / asl_path))
    return f"<!-- diagram:start {asl_path} -->\n```mermaid\n{diagram}```\n{END_MARK}"


def redraw(document: str) -> str:
    """``document`` with each of its diagram blocks drawn again from the definition it names."""
    parts, position = [], 0
    for start in _START.finditer(document):
        end = document.index(END_MARK, start.end()) + len(END_MARK)
        parts.append(document[position : start.start()])
        parts.append(document_block(start.group(1)) if start.group(1) else readme_block(load_definition()))
        position = end
    return "".join(parts) + document[position:]


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


def _branches(state: dict[str, Any]) -> list[dict[str, Any]]:
    """The state machines inside a Parallel (its branches) or a Map (its item processor)."""
    if state["Type"] == "Map":
        return [state.get("ItemProcessor") or state["Iterator"]]
    return state.get("Branches", [])


def _condition(choice: dict[str, Any]) -> str:
    for combinator, joiner in (("And", " and "), ("Or", " or ")):
        if combinator in choice:
            return joiner.join(_condition(rule) for rule in choice[combinator])
    if "Not" in choice:
        return f"not {_condition(choice['Not'])}"
    field = choice.get("Variable", "").rsplit(".", 1)[-1]
    for operator, value in choice.items():
        if operator.endswith("Equals") and not operator.endswith("PathEquals"):
            return f"{field} = {value}"
        if operator == "IsPresent":
            return f"{field} {'present' if value else 'absent'}"
        if operator == "StringMatches":
            return f"{field} matches {value}"
        if operator not in ("Variable", "Next"):
            return f"{field} {operator} {json.dumps(value)}"
    return "choice"


def _escape(text: str) -> str:
    return text.replace('"', "#quot;")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="redraw the diagram blocks of README.md and docs/")
    parser.add_argument("--asl", help="print the diagram of this definition (a path relative to the project root)")
    arguments = parser.parse_args(argv)
    if not arguments.write:
        print(document_block(arguments.asl) if arguments.asl else readme_block(load_definition()))
        return 0
    for document in DOCUMENTS:
        if document.exists():
            document.write_text(redraw(document.read_text(encoding="utf-8")), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
