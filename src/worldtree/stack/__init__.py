"""StackFlow v1alpha1 stacks (seed 000): validate, plan and gated apply through exec plugins.

``model`` holds the normalized stack, ``loader`` turns a YAML file into one (located errors with
the reference implementation's messages), ``plans`` builds the four phase plans (pure),
``digest`` ties a plan to the stack, env and prior state it was made from, ``artifacts`` writes
the JSON files and the markdown summary, and ``apply`` runs a reviewed plan through plugins.
"""

from worldtree.stack.loader import LoadedStack, load_stack
from worldtree.stack.model import PHASES, Record, Stack, Target, stack_json_schema

__all__ = ["PHASES", "LoadedStack", "Record", "Stack", "Target", "load_stack", "stack_json_schema"]
