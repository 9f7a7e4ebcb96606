"""The names of every environment variable streampay-incident reads, spelt once.

Only the shell reads them (the CLI at each run, the web app at start-up);
everything below it takes values.
"""

from __future__ import annotations

#: Comma-separated entry-point names not to load, or ``all`` / ``1``.
DISABLE_PLUGINS = "STREAMPAY_INCIDENT_DISABLE_PLUGINS"
#: Comma-separated allow-list of third-party plugins.
LOAD_PLUGINS = "STREAMPAY_INCIDENT_LOAD_PLUGINS"
#: ``1`` traces every hook call to stderr.
TRACE_PLUGINS = "STREAMPAY_INCIDENT_TRACE_PLUGINS"
#: ``STREAMPAY_INCIDENT_PLUGIN_<NAME>_<KEY>``: the setting ``<key>`` of plugin ``<name>``.
PLUGIN_CONFIG_PREFIX = "STREAMPAY_INCIDENT_PLUGIN_"

#: Comma-separated Horizon URLs (``chain``, the web app's health round).
HORIZON_URLS = "STREAMPAY_INCIDENT_HORIZON_URLS"
#: Comma-separated Stellar RPC URLs.
RPC_URLS = "STREAMPAY_INCIDENT_RPC_URLS"
#: ``public``, ``testnet`` or a network passphrase.
NETWORK = "STREAMPAY_INCIDENT_NETWORK"
