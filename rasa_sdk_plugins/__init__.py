"""rasa-sdk's plugin hook: rasa_sdk imports this package by name and calls init_hooks."""

import pluggy

from actions import server_auth


def init_hooks(manager: pluggy.PluginManager) -> None:
    manager.register(server_auth)
