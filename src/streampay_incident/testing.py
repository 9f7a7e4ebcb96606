"""pytest helpers for plugin authors.

Enable them in a ``conftest.py`` with ``pytest_plugins = ["streampay_incident.testing"]``.

``streampay_incident_plugin`` registers a plugin object for one test::

    def test_my_check(streampay_incident_plugin):
        pm = streampay_incident_plugin(MyPlugin())
        findings = run_checks(pm, PAYOUT_CHECKS, payouts, policy=...)  # hookspecs.PAYOUT_CHECKS
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest


@pytest.fixture
def streampay_incident_plugin() -> Iterator[Callable[..., Any]]:
    """Return ``register(plugin, name=None) -> PluginManager``; plugins are gone after the test."""
    from .registry import get_plugin_manager

    pm = get_plugin_manager(load_entry_points=False)
    registered: list[object] = []

    def register(plugin: object, name: str | None = None) -> Any:
        pm.register(plugin, name=name)
        registered.append(plugin)
        pm.check_pending()
        return pm

    yield register
    for plugin in registered:
        pm.unregister(plugin)
