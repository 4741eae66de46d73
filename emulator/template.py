"""Moved to ``tools.template``, which the emulator and the tools share; kept so existing imports work."""

from tools.template import (
    PROJECT_ROOT,
    TEMPLATE_PATH,
    Resolver,
    Template,
    TemplateParameterError,
    UnsupportedTemplateFeature,
    substitute_definition,
)

__all__ = [
    "PROJECT_ROOT",
    "TEMPLATE_PATH",
    "Resolver",
    "Template",
    "TemplateParameterError",
    "UnsupportedTemplateFeature",
    "substitute_definition",
]
