"""Read ``template.yaml`` as CloudFormation would: short-form tags, parameters, Globals, intrinsics.

Only what this project's template uses is supported; anything else raises
``UnsupportedTemplateFeature`` so that a template change never goes silently unemulated.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = PROJECT_ROOT / "template.yaml"
# The envelope's own resources (logical ids), which the examples' resources stand beside.
ENVELOPE_STATE_MACHINE = "IdempotentWorkflow"
RECORD_TABLE = "IdempotencyTable"

_PLACEHOLDER = re.compile(r"\$\{([^}!][^}]*)\}")
# In Fn::Sub, ${!Name} is the escape for a literal ${Name}.
_SUB_TOKEN = re.compile(r"\$\{(!?)([^}]*)\}")


class UnsupportedTemplateFeature(Exception):
    """The template uses something the emulator does not emulate."""


class TemplateParameterError(ValueError):
    """A parameter override names no parameter or breaks its constraints."""


class _CloudFormationLoader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML ships no type hints
    """YAML loader that turns CloudFormation short-form tags into their long form."""


def _construct_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    # !Ref and !Condition keep their names; the other short forms are Fn::<name>.
    name = tag_suffix if tag_suffix in ("Ref", "Condition") else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CloudFormationLoader.add_multi_constructor("!", _construct_tag)


@dataclass
class Template:
    """A parsed SAM template."""

    body: dict[str, Any]
    path: Path = TEMPLATE_PATH

    @classmethod
    def load(cls, path: Path = TEMPLATE_PATH) -> Template:
        with path.open(encoding="utf-8") as stream:
            return cls(body=yaml.load(stream, Loader=_CloudFormationLoader), path=path)

    @property
    def root(self) -> Path:
        return self.path.parent

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        resources: dict[str, dict[str, Any]] = self.body["Resources"]
        return resources

    def resources_of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {name: res for name, res in self.resources.items() if res["Type"] == resource_type}

    def parameter_values(self, overrides: Mapping[str, Any] | None = None) -> dict[str, str]:
        """Defaults merged with ``overrides``, checked as CloudFormation checks them; values as strings."""
        declared = self.body.get("Parameters", {})
        overrides = dict(overrides or {})
        unknown = sorted(set(overrides) - set(declared))
        if unknown:
            raise TemplateParameterError(f"Unknown template parameter(s): {', '.join(unknown)}")
        values: dict[str, str] = {}
        for name, spec in declared.items():
            if name in overrides:
                value = overrides[name]
            elif "Default" in spec:
                value = spec["Default"]
            else:
                raise TemplateParameterError(f"Parameter {name} has no default and no value was given")
            values[name] = str(value)
            allowed = [str(item) for item in spec.get("AllowedValues", [])]
            if allowed and str(value) not in allowed:
                raise TemplateParameterError(f"{name}={value} is not one of its AllowedValues: {', '.join(allowed)}")
            if spec.get("Type") == "Number":
                try:
                    number = float(value)
                except ValueError:
                    raise TemplateParameterError(f"{name}={value!r} is not a number") from None
                if "MinValue" in spec and number < float(spec["MinValue"]):
                    raise TemplateParameterError(f"{name}={value} is below its MinValue {spec['MinValue']}")
                if "MaxValue" in spec and number > float(spec["MaxValue"]):
                    raise TemplateParameterError(f"{name}={value} is above its MaxValue {spec['MaxValue']}")
        return values

    def as_deployed(self, resolver: Resolver) -> Template:
        """The template without the resources and outputs whose ``Condition`` is false, as CloudFormation deploys it."""
        body = dict(self.body)
        for section in ("Resources", "Outputs"):
            if section in body:
                body[section] = {
                    name: item
                    for name, item in body[section].items()
                    if "Condition" not in item or resolver.condition(item["Condition"])
                }
        return Template(body=body, path=self.path)

    def function_properties(self, logical_id: str) -> dict[str, Any]:
        """A function's properties with the template's ``Globals.Function`` merged in, as SAM does."""
        merged = copy.deepcopy(self.body.get("Globals", {}).get("Function", {}))
        own = self.resources[logical_id]["Properties"]
        for name, value in own.items():
            if name == "Environment":
                variables = merged.setdefault("Environment", {}).setdefault("Variables", {})
                variables.update(value.get("Variables", {}))
            else:
                merged[name] = copy.deepcopy(value)
        properties: dict[str, Any] = merged
        return properties

    def functions_invoked_by(self, state_machine_id: str) -> list[str]:
        """The functions a state machine's ``DefinitionSubstitutions`` pass by ``!GetAtt Function.Arn``."""
        substitutions = self.resources[state_machine_id]["Properties"].get("DefinitionSubstitutions", {})
        functions = self.resources_of_type("AWS::Serverless::Function")
        return [
            value["Fn::GetAtt"][0]
            for value in substitutions.values()
            if isinstance(value, dict) and "Fn::GetAtt" in value and value["Fn::GetAtt"][0] in functions
        ]

    def import_roots(self, logical_id: str) -> list[Path]:
        """Where a function's code is imported from: its ``CodeUri``, then each layer's ``ContentUri``.

        Only layers of this template (``!Ref`` to an ``AWS::Serverless::LayerVersion``) can be
        emulated; a layer given by ARN is refused rather than silently left out.
        """
        properties = self.function_properties(logical_id)
        roots = [self.root / properties["CodeUri"]]
        for layer in properties.get("Layers", []):
            layer_id = layer.get("Ref") if isinstance(layer, dict) else None
            resource = self.resources.get(layer_id or "", {})
            if resource.get("Type") != "AWS::Serverless::LayerVersion":
                raise UnsupportedTemplateFeature(
                    f"{logical_id}: only layers of this template can be emulated, not {layer!r}"
                )
            roots.append(self.root / resource["Properties"]["ContentUri"])
        return roots


@dataclass
class Resolver:
    """Resolves intrinsic functions against parameter values and deployed resources."""

    parameters: Mapping[str, str]
    pseudo: Mapping[str, str]
    refs: dict[str, str] = field(default_factory=dict)
    attributes: dict[tuple[str, str], str] = field(default_factory=dict)
    # The template's Conditions section.
    conditions: Mapping[str, Any] = field(default_factory=dict)

    def ref(self, name: str) -> str:
        for source in (self.parameters, self.pseudo, self.refs):
            if name in source:
                return source[name]
        raise UnsupportedTemplateFeature(f"Ref to {name!r}, which is not a parameter or a deployed resource")

    def get_att(self, logical_id: str, attribute: str) -> str:
        try:
            return self.attributes[(logical_id, attribute)]
        except KeyError:
            raise UnsupportedTemplateFeature(f"Fn::GetAtt {logical_id}.{attribute} is not emulated") from None

    def condition(self, name: str) -> bool:
        """Whether a declared condition holds under the parameters."""
        if name not in self.conditions:
            raise UnsupportedTemplateFeature(f"Condition {name!r} is not declared in Conditions")
        return self._holds(self.conditions[name])

    def _holds(self, expression: Any) -> bool:
        if not (isinstance(expression, dict) and len(expression) == 1):
            raise UnsupportedTemplateFeature(f"Not a condition function: {expression!r}")
        ((name, argument),) = expression.items()
        if name == "Condition":
            return self.condition(argument)
        if name == "Fn::Equals":
            left, right = self.resolve(argument)
            return str(left) == str(right)
        if name == "Fn::Not":
            (inner,) = argument
            return not self._holds(inner)
        if name == "Fn::And":
            return all(self._holds(inner) for inner in argument)
        if name == "Fn::Or":
            return any(self._holds(inner) for inner in argument)
        raise UnsupportedTemplateFeature(f"Condition function {name} is not emulated")

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((name, argument),) = value.items()
            handler = self._intrinsics().get(name)
            if handler is not None:
                return handler(argument)
            if name.startswith("Fn::") or name == "Ref":
                raise UnsupportedTemplateFeature(f"Intrinsic {name} is not emulated")
        return {key: self.resolve(item) for key, item in value.items()}

    def _intrinsics(self) -> dict[str, Callable[[Any], Any]]:
        return {
            "Ref": self.ref,
            "Fn::GetAtt": lambda argument: self.get_att(*argument),
            "Fn::Sub": self._sub,
            "Fn::Select": self._select,
            "Fn::Split": self._split,
            "Fn::Join": self._join,
        }

    def _select(self, argument: Any) -> Any:
        index, items = self.resolve(argument)
        if not isinstance(items, list) or not 0 <= int(index) < len(items):
            raise UnsupportedTemplateFeature(f"Fn::Select index {index} is outside {items!r}")
        return items[int(index)]

    def _split(self, argument: Any) -> list[str]:
        delimiter, text = self.resolve(argument)
        return str(text).split(delimiter)

    def _join(self, argument: Any) -> str:
        delimiter, items = self.resolve(argument)
        return str(delimiter).join(str(item) for item in items)

    def _sub(self, argument: Any) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        variables = {name: self.resolve(item) for name, item in variables.items()}

        def replace(match: re.Match[str]) -> str:
            escaped, name = match.groups()
            if escaped:
                return f"${{{name}}}"
            if name in variables:
                return str(variables[name])
            if "." in name:
                return self.get_att(*name.split(".", 1))
            return self.ref(name)

        return _SUB_TOKEN.sub(replace, text)


def substitute_definition(definition: str, substitutions: Mapping[str, Any]) -> str:
    """Replace ``${Name}`` placeholders as SAM's DefinitionSubstitutions do, refusing leftovers."""
    unused = [name for name in substitutions if f"${{{name}}}" not in definition]
    if unused:
        raise UnsupportedTemplateFeature(f"DefinitionSubstitutions not used by the definition: {', '.join(unused)}")
    for name, value in substitutions.items():
        definition = definition.replace(f"${{{name}}}", str(value))
    leftover = sorted(set(_PLACEHOLDER.findall(definition)))
    if leftover:
        raise UnsupportedTemplateFeature(f"Definition placeholders without a substitution: {', '.join(leftover)}")
    return definition
