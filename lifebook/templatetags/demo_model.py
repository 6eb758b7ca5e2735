"""`{% uses_demo_model as demo_model %}`: is the configured base model the demo model (generation.recipes)."""

from django import template

register = template.Library()


@register.simple_tag
def uses_demo_model() -> bool:
    from generation.recipes import uses_demo_model as configured

    return configured()
