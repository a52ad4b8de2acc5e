"""Exec plugins, StackFlow plugin spec v1: programs in any language, JSON over stdin/stdout.

``discovery`` finds ``stackflow-plugin-<domain>-<name>`` (or ``worldtree-plugin-…``) in
``./plugins/`` then on ``$PATH``; ``protocol`` holds the request/response envelopes; ``runner``
runs one subcommand with a timeout, a minimal environment (a base allowlist plus the
credentials the plugin's ``info`` names) and every credential value masked in what comes back.
"""

from worldtree.plugins.discovery import find_plugin, plugin_names
from worldtree.plugins.protocol import API_VERSION, PluginInfo, PluginResponse, request
from worldtree.plugins.runner import Plugin, PluginError

__all__ = ["API_VERSION", "Plugin", "PluginError", "PluginInfo", "PluginResponse", "find_plugin", "plugin_names",
           "request"]
