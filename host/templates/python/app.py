"""The component's entry: binds the rule to the host imports."""

import wit_world
from wit_world.imports import host as host_imports

from rule import route
from switchboard_sdk import export_rule


class WitWorld(wit_world.WitWorld):
    """The rule component."""

    route = export_rule(route, host_imports)
