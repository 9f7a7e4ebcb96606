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
import inspect
import sys
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs
import pluggy

from . import codes, envvars, hookspecs
from .model import Finding, SettlementTriage, make_finding

PROJECT = "streampay_incident"
ENTRY_POINT_GROUP = "streampay_incident"

DEFAULT_PLUGINS: tuple[str, ...] = (
    "streampay_incident.checks.payouts",
    "streampay_incident.checks.settlements",
    "streampay_incident.checks.chain",
    "streampay_incident.checks.escrow",
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
    disable = environ.get(envvars.DISABLE_PLUGINS, "").strip()
    load = environ.get(envvars.LOAD_PLUGINS)
    trace = environ.get(envvars.TRACE_PLUGINS, "").strip().lower()
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
    code_table(pm)  # a plugin declaring a code in conflict fails at start-up
    return pm


_CODE_TABLES: weakref.WeakKeyDictionary[
    pluggy.PluginManager, tuple[tuple[int, ...], Mapping[str, codes.FindingCode]]
] = weakref.WeakKeyDictionary()


def code_table(pm: pluggy.PluginManager, *, strict: bool = True) -> Mapping[str, codes.FindingCode]:
    """The built-in codes plus those ``pm``'s plugins declare; it lives with ``pm``.

    Declared again when plugins were registered or unregistered since the last
    call (the ``streampay_incident_plugin`` fixture registers after the manager
    is built). ``strict`` (at start-up): a registration hook that raises, or a
    code declared differently twice, raises. Otherwise (while checks run) that
    plugin's codes are left out, and its checks fail on their own as
    ``PLUGIN_ERROR``.
    """
    plugins = tuple(sorted(id(p) for p in pm.get_plugins()))
    cached = _CODE_TABLES.get(pm)
    if cached is not None and cached[0] == plugins:
        return cached[1]
    table = dict(codes.CODES)
    # Each implementation is called on its own (one that raises fails alone), so the call is
    # traced here as pluggy would trace a hook call.
    pm.trace.root.get("hook")(hookspecs.REGISTER_CODES)
    for impl in getattr(pm.hook, hookspecs.REGISTER_CODES).get_hookimpls():
        pm.trace.root.get("hook")(f"  {plugin_name(pm, impl.plugin)}")
        staged = dict(table)
        try:
            for code in impl.function() or ():
                codes.declare(staged, code)
        except Exception:
            if strict:
                raise
            continue
        table = staged
    _CODE_TABLES[pm] = (plugins, table)
    return table


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


def _accepts(check: Callable[..., Any], keyword: str) -> bool:
    """Whether ``check`` takes ``keyword`` (by name or through ``**kwargs``)."""
    try:
        parameters = inspect.signature(check).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature: pass only the old keywords
        return False
    return any(
        p.kind is p.VAR_KEYWORD or (p.name == keyword and p.kind is not p.POSITIONAL_ONLY)
        for p in parameters
    )


def _run(
    pm: pluggy.PluginManager,
    hook_name: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    optional: Mapping[str, Any],
) -> tuple[list[Finding], list[SettlementTriage]]:
    """Call every check registered through ``hook_name``; findings and any triages returned.

    ``optional`` keywords go only to the checks that accept them. The codes of
    ``pm``'s plugins are in force meanwhile (:func:`code_table`).
    """
    findings: list[Finding] = []
    triages: list[SettlementTriage] = []
    caller = getattr(pm.hook, hook_name)
    trace = pm.trace.root.get("check")  # writes only when tracing is enabled
    with codes.declared(code_table(pm, strict=False)):
        for impl in caller.get_hookimpls():
            name = plugin_name(pm, impl.plugin)
            try:
                checks: Iterable[Callable[..., Any]] = impl.function() or ()
            except Exception as exc:  # noqa: BLE001 - a plugin's fault becomes a finding
                findings.append(plugin_error(name, hook_name, exc))
                continue
            for check in checks:
                extra = {k: v for k, v in optional.items() if _accepts(check, k)}
                try:
                    result = check(*args, **kwargs, **extra)
                    triage = result if isinstance(result, SettlementTriage) else None
                    produced = list(triage.findings if triage is not None else result)
                    bad = [f for f in produced if not isinstance(f, Finding)]
                    if bad:
                        raise TypeError(f"returned {type(bad[0]).__name__}, not a Finding")
                except Exception as exc:  # noqa: BLE001
                    findings.append(plugin_error(name, _check_name(check), exc))
                    continue
                trace(f"{hook_name} {name} {_check_name(check)} -> {len(produced)} finding(s)")
                findings.extend(produced)
                if triage is not None:
                    triages.append(triage)
    return findings, triages


def run_checks(
    pm: pluggy.PluginManager, hook_name: str, *args: Any, **kwargs: Any
) -> tuple[Finding, ...]:
    """Call every check registered through ``hook_name``, each on its own.

    A plugin whose registration hook or whose check raises (or returns
    something that is not a finding) becomes one ``PLUGIN_ERROR`` finding
    naming the plugin and the check; the other checks still run.
    """
    findings, _ = _run(pm, hook_name, args, kwargs, {})
    return tuple(findings)


def run_settlement_checks(
    pm: pluggy.PluginManager,
    settlements: Sequence[Any],
    *,
    context: Any,
    **kwargs: Any,
) -> SettlementTriage:
    """Every settlement check, each on its own (see :func:`run_checks`): verdicts and findings.

    ``context`` goes only to checks that accept it, so a check written against
    ``check(settlements, *, transactions, now, policy)`` keeps working. The
    verdicts are those of the first check that returned a
    :class:`~streampay_incident.model.SettlementTriage` (the built-in rules).
    """
    findings, triages = _run(
        pm, hookspecs.SETTLEMENT_CHECKS, (settlements,), kwargs, {"context": context}
    )
    verdicts = triages[0].verdicts if triages else ()
    return SettlementTriage(verdicts=verdicts, findings=tuple(findings))


def first_answer(
    pm: pluggy.PluginManager, hook_name: str, accept: Callable[[Any], bool], **kwargs: Any
) -> tuple[Any, Finding | None]:
    """Call a ``firstresult`` hook through pluggy; ``(answer, None)`` or ``(None, PLUGIN_ERROR)``.

    pluggy decides the order, runs wrappers and stops at the first non-None
    answer. An implementation that raises becomes a ``PLUGIN_ERROR`` naming it
    (found from the traceback); an answer ``accept`` refuses becomes one
    naming the implementations that could have given it.
    """
    caller = getattr(pm.hook, hook_name)
    impls = caller.get_hookimpls()
    try:
        answer = caller(**kwargs)
    except Exception as exc:  # noqa: BLE001 - the host's fault becomes a finding
        return None, plugin_error(_raised_by(pm, impls, exc) or hook_name, hook_name, exc)
    if answer is None or accept(answer):
        return answer, None
    answering = [plugin_name(pm, i.plugin) for i in impls if not (i.hookwrapper or i.wrapper)]
    problem = TypeError(f"answered {type(answer).__name__}, which is not accepted")
    return None, plugin_error(", ".join(answering) or hook_name, hook_name, problem)


def _raised_by(pm: pluggy.PluginManager, impls: Sequence[Any], exc: BaseException) -> str | None:
    """The plugin whose hook implementation is on ``exc``'s traceback, innermost first."""
    owners = {getattr(i.function, "__code__", None): i.plugin for i in impls}
    found = None
    tb = exc.__traceback__
    while tb is not None:
        plugin = owners.get(tb.tb_frame.f_code)
        if plugin is not None:
            found = plugin_name(pm, plugin)
        tb = tb.tb_next
    return found


def checks_document(pm: pluggy.PluginManager, *, docs_url: str | None = None) -> dict[str, Any]:
    """Every finding code (code, severity and what escalates it, title, runbook) and every
    loaded plugin; runbook links point into the docs site at ``docs_url`` when given."""
    from .runbooks import docs_link

    return {
        "codes": [
            {
                "code": c.code,
                "severity": c.severity.value,
                "escalates_to": c.escalates_to.value if c.escalates_to else None,
                "escalation": c.escalation or None,
                "title": c.title,
                "runbook": docs_link(c.runbook, docs_url),
            }
            for c in code_table(pm, strict=False).values()
        ],
        "plugins": loaded_plugins(pm),
    }


def plugin_error(plugin: str, where: str, exc: BaseException) -> Finding:
    """The ``PLUGIN_ERROR`` finding for ``plugin`` failing in ``where`` with ``exc``."""
    return make_finding(
        "PLUGIN_ERROR",
        subject=plugin,
        summary=f"plugin {plugin!r} failed in {where}: {type(exc).__name__}: {exc}",
        evidence={"plugin": plugin, "check": where, "error": type(exc).__name__},
    )
