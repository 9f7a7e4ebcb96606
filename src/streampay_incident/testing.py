"""pytest helpers for plugin authors.

Enable them in a ``conftest.py`` with ``pytest_plugins = ["streampay_incident.testing"]``.

``streampay_incident_plugin`` registers a plugin object or module for one test::

    def test_my_check(streampay_incident_plugin):
        pm = streampay_incident_plugin(MyPlugin(), name="team_risk")
        findings = run_checks(pm, PAYOUT_CHECKS, payouts, policy=...)  # hookspecs.PAYOUT_CHECKS

The fixture's value has the signature of :class:`RegisterPlugin`:
``register(plugin, name=None, *, config=None)``, returning the plugin manager.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Protocol

import pluggy
import pytest


class RegisterPlugin(Protocol):
    """What the ``streampay_incident_plugin`` fixture gives."""

    def __call__(
        self, plugin: object, name: str | None = None, *, config: Mapping[str, str] | None = None
    ) -> pluggy.PluginManager:
        """Register ``plugin`` (as ``name``) for this test; return the plugin manager.

        ``config`` is the plugin's settings (what ``STREAMPAY_INCIDENT_PLUGIN_<NAME>_<KEY>``
        variables give in production). A plugin that is bad (a misspelt hook name) is
        left out and reported as ``PLUGIN_ERROR`` by the runs of the manager's checks,
        exactly as in production.
        """
        ...  # pragma: no cover


@pytest.fixture
def streampay_incident_plugin() -> Iterator[RegisterPlugin]:
    """Return ``register(plugin, name=None, *, config=None) -> PluginManager``.

    One manager for the test, with the built-in checks and no installed
    plugins; the plugins registered through it are gone after the test.
    """
    from .registry import get_plugin_manager, register_plugin

    pm = get_plugin_manager(load_entry_points=False)
    registered: list[object] = []

    def register(
        plugin: object, name: str | None = None, *, config: Mapping[str, str] | None = None
    ) -> pluggy.PluginManager:
        register_plugin(pm, plugin, name, config=config)
        registered.append(plugin)
        return pm

    yield register
    for plugin in registered:
        if pm.is_registered(plugin):
            pm.unregister(plugin)
