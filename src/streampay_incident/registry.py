"""The plugin registry: pluggy, as pytest, tox and datasette use it.

Built-in checks are plugins themselves (:data:`DEFAULT_PLUGINS`); third-party
plugins come from the ``streampay_incident`` entry-point group. Environment
switches (read by :func:`plugin_settings_from_env`, at the shell):

``STREAMPAY_INCIDENT_DISABLE_PLUGINS``
    comma-separated entry-point names not to load, or ``all`` (or ``1``) for
    every third-party plugin.
``STREAMPAY_INCIDENT_LOAD_PLUGINS``
    comma-separated allow-list: only these third-party plugins load.
``STREAMPAY_INCIDENT_TRACE_PLUGINS``
    ``1`` to trace every hook call to stderr.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs
import pluggy

from . import codes, hookspecs
from .model import Finding, make_finding

PROJECT = "streampay_incident"
ENTRY_POINT_GROUP = "streampay_incident"

DEFAULT_PLUGINS: tuple[str, ...] = (
    "streampay_incident.checks.payouts",
    "streampay_incident.checks.settlements",
    "streampay_incident.checks.chain",
)


@attrs.frozen
class PluginSettings:
    """Which third-party plugins to load, and whether to trace hook calls."""

    disabled: frozenset[str] = frozenset()
    disable_all: bool = False
    allow: frozenset[str] | None = None
    trace: bool = False


def _names(value: str) -> frozenset[str]:
    return frozenset(n.strip() for n in value.split(",") if n.strip())


def plugin_settings_from_env(environ: Mapping[str, str]) -> PluginSettings:
    """Read the ``STREAMPAY_INCIDENT_*_PLUGINS`` switches from an environment mapping."""
    disable = environ.get("STREAMPAY_INCIDENT_DISABLE_PLUGINS", "").strip()
    load = environ.get("STREAMPAY_INCIDENT_LOAD_PLUGINS")
    trace = environ.get("STREAMPAY_INCIDENT_TRACE_PLUGINS", "").strip().lower()
    return PluginSettings(
        disabled=_names(disable),
        disable_all=disable.lower() in ("1", "all", "true", "yes"),
        allow=_names(load) if load is not None else None,
        trace=trace in ("1", "true", "yes", "on"),
    )


def _load_entry_points(pm: pluggy.PluginManager, settings: PluginSettings) -> None:
    from importlib.metadata import entry_points

    if settings.disable_all:
        return
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in settings.disabled:
            continue
        if settings.allow is not None and ep.name not in settings.allow:
            continue
        if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
            continue
        plugin = ep.load()
        pm.register(plugin, name=ep.name)
        dist = getattr(ep, "dist", None)
        if dist is not None:
            _VERSIONS[ep.name] = dist.version


_VERSIONS: dict[str, str] = {}


def get_plugin_manager(
    settings: PluginSettings | None = None, *, load_entry_points: bool = True
) -> pluggy.PluginManager:
    """A plugin manager with the hookspecs, the built-in checks and (optionally) plugins.

    Declares every plugin's codes and runs ``check_pending()`` so a misspelt
    hook name fails at start-up rather than being silently ignored.
    """
    settings = settings or PluginSettings()
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    for name in DEFAULT_PLUGINS:
        pm.register(importlib.import_module(name), name=name)
    if load_entry_points:
        _load_entry_points(pm, settings)
    if settings.trace:
        pm.trace.root.setwriter(lambda msg: sys.stderr.write(msg))
        pm.enable_tracing()
    pm.check_pending()
    for declared in pm.hook.streampay_incident_register_codes():
        for code in declared:
            codes.register_code(code)
    return pm


def plugin_name(pm: pluggy.PluginManager, plugin: object) -> str:
    return pm.get_name(plugin) or repr(plugin)


def loaded_plugins(pm: pluggy.PluginManager) -> list[dict[str, str]]:
    """``[{"name", "version"}]`` for every registered plugin, built-ins included."""
    from .__about__ import __version__

    out = []
    for name, _plugin in sorted(pm.list_name_plugin()):
        version = __version__ if name in DEFAULT_PLUGINS else _VERSIONS.get(name, "unknown")
        out.append({"name": name, "version": version})
    return out


def _check_name(check: Callable[..., Any]) -> str:
    name = getattr(check, "__qualname__", None) or getattr(check, "__name__", None)
    return str(name) if name else repr(check)


def run_checks(
    pm: pluggy.PluginManager, hook_name: str, *args: Any, **kwargs: Any
) -> tuple[Finding, ...]:
    """Call every check registered through ``hook_name``, each on its own.

    A plugin whose registration hook or whose check raises (or returns
    something that is not a finding) becomes one ``PLUGIN_ERROR`` finding
    naming the plugin and the check; the other checks still run.
    """
    findings: list[Finding] = []
    caller = getattr(pm.hook, hook_name)
    trace = pm.trace.root.get("check")  # writes only when tracing is enabled
    for impl in caller.get_hookimpls():
        name = plugin_name(pm, impl.plugin)
        try:
            checks: Iterable[Callable[..., Iterable[Finding]]] = impl.function() or ()
        except Exception as exc:  # noqa: BLE001 - a plugin's fault becomes a finding
            findings.append(_plugin_error(name, hook_name, exc))
            continue
        for check in checks:
            try:
                produced = list(check(*args, **kwargs))
                bad = [f for f in produced if not isinstance(f, Finding)]
                if bad:
                    raise TypeError(f"returned {type(bad[0]).__name__}, not a Finding")
            except Exception as exc:  # noqa: BLE001
                findings.append(_plugin_error(name, _check_name(check), exc))
                continue
            trace(f"{hook_name} {name} {_check_name(check)} -> {len(produced)} finding(s)")
            findings.extend(produced)
    return tuple(findings)


def _plugin_error(plugin: str, where: str, exc: BaseException) -> Finding:
    return make_finding(
        "PLUGIN_ERROR",
        subject=plugin,
        summary=f"plugin {plugin!r} failed in {where}: {type(exc).__name__}: {exc}",
        evidence={"plugin": plugin, "check": where, "error": type(exc).__name__},
    )
