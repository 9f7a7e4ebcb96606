"""The plugin registry: pluggy, as pytest, tox and datasette use it.

Built-in checks are plugins themselves (:data:`DEFAULT_PLUGINS`); third-party
plugins come from the ``streampay_incident`` entry-point group. Environment
switches (read by :func:`plugin_settings_from_env`, at the shell):

``STREAMPAY_INCIDENT_DISABLE_PLUGINS``
    comma-separated entry-point names not to load, or ``all`` (or ``1``) for
    every third-party plugin. Disable wins over load.
``STREAMPAY_INCIDENT_LOAD_PLUGINS``
    comma-separated allow-list: only these third-party plugins load. Names are
    case-sensitive; an unknown name, or an empty value, is warned about on stderr.
``STREAMPAY_INCIDENT_TRACE_PLUGINS``
    ``1`` to trace every hook call, and every check with its duration, to stderr.
``STREAMPAY_INCIDENT_PLUGIN_<NAME>_<KEY>``
    a setting for the plugin ``<name>``: its checks get ``{"<key>": value}``
    as the read-only ``config`` keyword (:func:`plugin_config`).

A plugin fails alone: whatever goes wrong in it (its import, a misspelt hook,
its codes, a check that raises, returns something malformed or overruns its
time budget) becomes one ``PLUGIN_ERROR`` (or ``PLUGIN_TIMEOUT``) finding
naming it, and its other checks are skipped for the run.

The module is over 400 lines because building a manager, declaring its codes,
sorting out its settings and running its checks share one per-manager state
(:class:`_Host`); calling one check lives in :mod:`.plugin_calls`.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import re
import sys
import time
import types
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import attrs
import pluggy

from . import codes, envvars, hookspecs
from .model import Finding, SettlementTriage, make_finding
from .plugin_calls import Overrun, accepts, call_within, check_name, valid_findings

_accepts = accepts  # the name the use-case tests know

PROJECT = "streampay_incident"
ENTRY_POINT_GROUP = "streampay_incident"

DEFAULT_PLUGINS: tuple[str, ...] = (
    "streampay_incident.checks.payouts",
    "streampay_incident.checks.settlements",
    "streampay_incident.checks.chain",
    "streampay_incident.checks.escrow",
)

#: Seconds a third-party check call may take before it is abandoned (``PLUGIN_TIMEOUT``).
DEFAULT_CHECK_BUDGET = 2.0


@attrs.frozen
class PluginSettings:
    """Which third-party plugins to load, how to run them, and their settings.

    ``check_budget`` is the time budget of one third-party check call, in
    seconds; ``config`` the ``STREAMPAY_INCIDENT_PLUGIN_*`` variables (name
    without the prefix -> value), sorted out per plugin by :func:`plugin_config`.
    """

    disabled: frozenset[str] = frozenset()
    disable_all: bool = False
    allow: frozenset[str] | None = None
    trace: bool = False
    check_budget: float = DEFAULT_CHECK_BUDGET
    config: Mapping[str, str] = attrs.field(factory=dict, eq=False, hash=False)


def _names(value: str) -> frozenset[str]:
    return frozenset(n.strip() for n in value.split(",") if n.strip())


def plugin_settings_from_env(
    environ: Mapping[str, str], *, timeout: float | None = None
) -> PluginSettings:
    """Read the ``STREAMPAY_INCIDENT_*PLUGIN*`` variables from an environment mapping.

    ``timeout`` is the command's ``--timeout``: the check budget never exceeds it.
    """
    disable = environ.get(envvars.DISABLE_PLUGINS, "").strip()
    load = environ.get(envvars.LOAD_PLUGINS)
    trace = environ.get(envvars.TRACE_PLUGINS, "").strip().lower()
    budget = DEFAULT_CHECK_BUDGET if timeout is None else min(DEFAULT_CHECK_BUDGET, timeout)
    return PluginSettings(
        disabled=_names(disable),
        disable_all=disable.lower() in ("1", "all", "true", "yes"),
        allow=_names(load) if load is not None else None,
        trace=trace in ("1", "true", "yes", "on"),
        check_budget=budget,
        config={
            key.removeprefix(envvars.PLUGIN_CONFIG_PREFIX): value
            for key, value in environ.items()
            if key.startswith(envvars.PLUGIN_CONFIG_PREFIX)
        },
    )


@attrs.define
class _Host:
    """What the registry keeps with one plugin manager."""

    settings: PluginSettings
    #: Plugins out for the manager's life (import, hooks, codes): name -> its PLUGIN_ERROR.
    failed: dict[str, Finding] = attrs.field(factory=dict)
    #: Settings given by the test fixture, in place of the environment's.
    config: dict[str, Mapping[str, str]] = attrs.field(factory=dict)
    versions: dict[str, str] = attrs.field(factory=dict)


_HOSTS: weakref.WeakKeyDictionary[pluggy.PluginManager, _Host] = weakref.WeakKeyDictionary()


def _host(pm: pluggy.PluginManager) -> _Host:
    host = _HOSTS.get(pm)
    if host is None:
        host = _HOSTS[pm] = _Host(PluginSettings())
    return host


def _warn(message: str) -> None:
    sys.stderr.write(f"streampay-incident: warning: {message}\n")


def _warn_allow_list(settings: PluginSettings, installed: Sequence[str]) -> None:
    """Say on stderr when the allow-list is empty or names a plugin that is not installed."""
    if settings.allow is None or settings.disable_all:
        return
    if not settings.allow:
        _warn(f"{envvars.LOAD_PLUGINS} is set but empty: no third-party plugin loads")
    for name in sorted(settings.allow - set(installed)):
        near = [n for n in installed if n.lower() == name.lower()]
        hint = f" (names are case-sensitive: did you mean {near[0]!r}?)" if near else ""
        _warn(f"{envvars.LOAD_PLUGINS} names {name!r}, which is not installed{hint}")


def _load_entry_points(pm: pluggy.PluginManager, settings: PluginSettings) -> None:
    from importlib.metadata import entry_points

    eps = list(entry_points(group=ENTRY_POINT_GROUP))
    _warn_allow_list(settings, [ep.name for ep in eps])
    if settings.disable_all:
        return
    host = _host(pm)
    for ep in eps:
        if ep.name in settings.disabled:  # disable wins over load
            continue
        if settings.allow is not None and ep.name not in settings.allow:
            continue
        if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
            continue
        dist = getattr(ep, "dist", None)
        if dist is not None:
            host.versions[ep.name] = dist.version
        try:
            plugin = ep.load()
        except Exception as exc:  # noqa: BLE001 - a plugin that cannot load fails alone
            host.failed[ep.name] = plugin_error(ep.name, "load", exc)
            continue
        register_plugin(pm, plugin, name=ep.name)


def register_plugin(
    pm: pluggy.PluginManager,
    plugin: object,
    name: str | None = None,
    *,
    config: Mapping[str, str] | None = None,
) -> Finding | None:
    """Register ``plugin`` on ``pm``; its ``PLUGIN_ERROR`` instead of raising when it is bad.

    Bad: pluggy refuses it (a hook implementation whose arguments do not match
    the specification), or it implements a hook that does not exist (a
    misspelt name): it is then unregistered and stays out for ``pm``'s life,
    and every run of ``pm``'s checks reports its error. ``config`` replaces
    the plugin's settings from the environment (the test fixture's way).
    """
    label = name or getattr(plugin, "__name__", None) or type(plugin).__qualname__
    host = _host(pm)
    try:
        registered = pm.register(plugin, name=name)
    except Exception as exc:  # noqa: BLE001 - pluggy's refusal becomes a finding
        error = plugin_error(label, "register", exc)
        host.failed[label] = error
        return error
    label = plugin_name(pm, plugin) if registered else label
    unknown = _unknown_hooks(pm, plugin, label)
    if unknown is not None:
        pm.unregister(plugin)
        host.failed[label] = unknown
        return unknown
    if config is not None:
        host.config[label] = types.MappingProxyType(dict(config))
    return None


def _unknown_hooks(pm: pluggy.PluginManager, plugin: object, name: str) -> Finding | None:
    """The ``PLUGIN_ERROR`` of a plugin implementing a hook that does not exist, else None."""
    unknown = sorted(
        caller.name
        for caller in pm.get_hookcallers(plugin) or ()
        if not caller.has_spec()
        and any(i.plugin is plugin and not i.optionalhook for i in caller.get_hookimpls())
    )
    if not unknown:
        return None
    return plugin_error(
        name, unknown[0], NameError(f"unknown hook {', '.join(unknown)} (misspelt?)")
    )


def get_plugin_manager(
    settings: PluginSettings | None = None, *, load_entry_points: bool = True
) -> pluggy.PluginManager:
    """A plugin manager with the hookspecs, the built-in checks and (optionally) plugins.

    Never raises for a plugin's fault: a plugin that fails to import, names a
    hook that does not exist, or declares its codes wrongly is left out and
    reported as ``PLUGIN_ERROR`` by every run of the manager's checks.
    """
    settings = settings or PluginSettings()
    pm = pluggy.PluginManager(PROJECT)
    _HOSTS[pm] = _Host(settings)
    pm.add_hookspecs(hookspecs)
    for name in DEFAULT_PLUGINS:
        pm.register(importlib.import_module(name), name=name)
    if load_entry_points:
        _load_entry_points(pm, settings)
    if settings.trace:
        pm.trace.root.setwriter(lambda msg: sys.stderr.write(msg))
        pm.enable_tracing()
    code_table(pm)  # declares every plugin's codes now, so `checks` lists them
    return pm


@attrs.frozen
class _Declared:
    plugins: tuple[int, ...]
    table: Mapping[str, codes.FindingCode]
    failed: Mapping[str, Finding]


_CODE_TABLES: weakref.WeakKeyDictionary[pluggy.PluginManager, _Declared] = (
    weakref.WeakKeyDictionary()
)


def _declare(pm: pluggy.PluginManager) -> _Declared:
    """Every plugin's codes, once per set of registered plugins; the plugins that failed."""
    plugins = tuple(sorted(id(p) for p in pm.get_plugins()))
    cached = _CODE_TABLES.get(pm)
    if cached is not None and cached.plugins == plugins:
        return cached
    table = dict(codes.CODES)
    origin = dict.fromkeys(codes.CODES, "built-in")
    failed: dict[str, Finding] = {}
    # A plugin registered with pm.register() directly (not register_plugin) is vetted here.
    for name, plugin in pm.list_name_plugin():
        error = _unknown_hooks(pm, plugin, name)
        if error is not None:
            failed[name] = error
    # Each implementation is called on its own (one that raises fails alone), so the call is
    # traced here as pluggy would trace a hook call.
    pm.trace.root.get("hook")(hookspecs.REGISTER_CODES)
    for impl in getattr(pm.hook, hookspecs.REGISTER_CODES).get_hookimpls():
        name = plugin_name(pm, impl.plugin)
        pm.trace.root.get("hook")(f"  {name}")
        if name in failed:
            continue
        staged = dict(table)
        try:
            declared = impl.function()
            for code in declared or ():
                codes.declare(staged, code, by=origin.get(getattr(code, "code", ""), ""))
                origin.setdefault(code.code, f"plugin {name!r}")
        except Exception as exc:  # noqa: BLE001 - the plugin fails alone
            failed[name] = plugin_error(name, hookspecs.REGISTER_CODES, exc)
            continue
        table = staged
    declared_now = _Declared(plugins, table, failed)
    _CODE_TABLES[pm] = declared_now
    return declared_now


def code_table(
    pm: pluggy.PluginManager, *, strict: bool = False
) -> Mapping[str, codes.FindingCode]:
    """The built-in codes plus those ``pm``'s plugins declare; it lives with ``pm``.

    Declared again when plugins were registered or unregistered since the last
    call (the ``streampay_incident_plugin`` fixture registers after the manager
    is built). A plugin whose registration hook raises, or that declares a
    code wrongly (differently from a built-in or another plugin, an unknown
    severity, a relative ``runbook_url``) is left out, and reported as
    ``PLUGIN_ERROR`` by the runs of ``pm``'s checks; ``strict`` raises instead.
    """
    declared = _declare(pm)
    if strict and declared.failed:
        raise RuntimeError(next(iter(declared.failed.values())).summary)
    return declared.table


def failed_plugins(pm: pluggy.PluginManager) -> dict[str, Finding]:
    """The plugins left out of ``pm`` (import, hooks, codes): name -> its ``PLUGIN_ERROR``."""
    return {**_host(pm).failed, **_declare(pm).failed}


def plugin_config(pm: pluggy.PluginManager, name: str) -> Mapping[str, str]:
    """The read-only settings of plugin ``name``: ``STREAMPAY_INCIDENT_PLUGIN_<NAME>_<KEY>``.

    ``<NAME>`` is the plugin's name in upper case with every character other
    than a letter or digit turned into ``_`` (``team-risk`` -> ``TEAM_RISK``);
    ``<KEY>`` comes out in lower case. When two plugins' names overlap
    (``team`` and ``team_risk``), a variable belongs to the longer one.
    Values are strings, as the environment gives them.
    """
    host = _host(pm)
    if name in host.config:
        return host.config[name]
    own = _env_name(name) + "_"
    names = {_env_name(n) + "_" for n, _ in pm.list_name_plugin()} | {own}
    prefixes = sorted(names, key=len, reverse=True)
    out: dict[str, str] = {}
    for key, value in host.settings.config.items():
        owner = next((p for p in prefixes if key.startswith(p) and len(key) > len(p)), None)
        if owner == own:
            out[key[len(own) :].lower()] = value
    return types.MappingProxyType(out)


def _env_name(name: str) -> str:
    return re.sub(r"[^A-Z0-9]", "_", name.upper())


def plugin_name(pm: pluggy.PluginManager, plugin: object) -> str:
    return pm.get_name(plugin) or repr(plugin)


def loaded_plugins(pm: pluggy.PluginManager) -> list[dict[str, str]]:
    """``[{"name", "version"}]`` for every registered plugin, built-ins included."""
    from .__about__ import __version__

    versions = _host(pm).versions
    out = []
    for name, _plugin in sorted(pm.list_name_plugin()):
        version = __version__ if name in DEFAULT_PLUGINS else versions.get(name, "unknown")
        out.append({"name": name, "version": version})
    return out


@attrs.define
class _Run:
    """One run of a manager's checks (one report): the plugins already out of it."""

    reported: set[str] = attrs.field(factory=set)


_RUN: contextvars.ContextVar[_Run | None] = contextvars.ContextVar(
    "streampay_incident_plugin_run", default=None
)


@contextlib.contextmanager
def plugin_run() -> Iterator[None]:
    """One run: a plugin that fails in it is reported once and its other checks skipped.

    A use case that calls the check runners more than once for one report
    (payouts and the escrow reconciliation) wraps them in one run; nested
    runs are the outer one.
    """
    if _RUN.get() is not None:
        yield
        return
    token = _RUN.set(_Run())
    try:
        yield
    finally:
        _RUN.reset(token)


def _run(
    pm: pluggy.PluginManager,
    hook_name: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    optional: Mapping[str, Any],
) -> tuple[list[Finding], list[SettlementTriage]]:
    """Call every check registered through ``hook_name``; findings and any triages returned.

    ``optional`` keywords (and a plugin's ``config``) go only to the checks
    that accept them. The codes of ``pm``'s plugins are in force meanwhile
    (:func:`code_table`). A third-party check runs under the time budget.
    """
    with plugin_run():
        run = _RUN.get()
        assert run is not None
        return _run_in(pm, run, hook_name, args, kwargs, optional)


def _run_in(
    pm: pluggy.PluginManager,
    run: _Run,
    hook_name: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    optional: Mapping[str, Any],
) -> tuple[list[Finding], list[SettlementTriage]]:
    findings: list[Finding] = []
    triages: list[SettlementTriage] = []
    failed = failed_plugins(pm)
    for name in sorted(set(failed) - run.reported):  # out since start-up: said once per run
        findings.append(failed[name])
        run.reported.add(name)
    budget = _host(pm).settings.check_budget
    table = code_table(pm)
    caller = getattr(pm.hook, hook_name)
    trace = pm.trace.root.get("check")  # writes only when tracing is enabled
    with codes.declared(table):
        for impl in caller.get_hookimpls():
            name = plugin_name(pm, impl.plugin)
            if name in failed or name in run.reported:
                continue  # failed earlier in this run: its other checks are skipped
            try:
                checks: Iterable[Callable[..., Any]] = impl.function() or ()
            except Exception as exc:  # noqa: BLE001 - a plugin's fault becomes a finding
                findings.append(plugin_error(name, hook_name, exc))
                run.reported.add(name)
                continue
            extras = dict(optional, config=plugin_config(pm, name))
            for check in checks:
                extra = {k: v for k, v in extras.items() if accepts(check, k)}

                def call(check: Callable[..., Any] = check, extra: Any = extra) -> Any:
                    result = check(*args, **kwargs, **extra)
                    triage = result if isinstance(result, SettlementTriage) else None
                    produced = valid_findings(triage.findings if triage else result, table)
                    return triage, produced

                started = time.monotonic()
                try:
                    if name in DEFAULT_PLUGINS:  # built-in checks have no budget
                        triage, produced = call()
                    else:
                        triage, produced = call_within(budget, call)
                except Overrun:
                    findings.append(plugin_timeout(name, check_name(check), budget))
                except (Exception, SystemExit) as exc:  # noqa: BLE001 - sys.exit() too
                    findings.append(plugin_error(name, check_name(check), exc))
                else:
                    took = time.monotonic() - started
                    trace(
                        f"{hook_name} {name} {check_name(check)} -> "
                        f"{len(produced)} finding(s) in {took:.3f} s"
                    )
                    findings.extend(produced)
                    if triage is not None:
                        triages.append(triage)
                    continue
                trace(
                    f"{hook_name} {name} {check_name(check)} failed after "
                    f"{time.monotonic() - started:.3f} s"
                )
                run.reported.add(name)
                break
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
            for c in code_table(pm).values()
        ],
        "plugins": loaded_plugins(pm),
        "plugin_errors": [f.to_json() for f in failed_plugins(pm).values()],
    }


def plugin_error(plugin: str, where: str, exc: BaseException) -> Finding:
    """The ``PLUGIN_ERROR`` finding for ``plugin`` failing in ``where`` with ``exc``."""
    return make_finding(
        "PLUGIN_ERROR",
        subject=plugin,
        summary=f"plugin {plugin!r} failed in {where}: {type(exc).__name__}: {exc}",
        evidence={"plugin": plugin, "check": where, "error": type(exc).__name__},
    )


def plugin_timeout(plugin: str, where: str, budget: float) -> Finding:
    """The ``PLUGIN_TIMEOUT`` finding for ``plugin``'s check ``where`` overrunning ``budget``."""
    return make_finding(
        "PLUGIN_TIMEOUT",
        subject=plugin,
        summary=(
            f"plugin {plugin!r} check {where} did not finish within {budget:g} s: "
            "abandoned, its findings are missing"
        ),
        evidence={"plugin": plugin, "check": where, "budget_seconds": budget},
    )
