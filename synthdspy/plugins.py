"""Third-party tasks and gates, found through Python entry points.

A package adds tasks or gates by declaring entry points in the groups ``synthdspy.tasks`` and
``synthdspy.gates``, named as the task or gate, pointing at the module (or class) that registers
it with :func:`synthdspy.registry.register_task` / :func:`~synthdspy.registry.register_gate`::

    [project.entry-points."synthdspy.tasks"]
    haiku = "my_pkg.haiku"

They are loaded once per process, when :mod:`synthdspy.catalog` is first imported (that is, when
an experiment is validated, a program is built or ``synthdspy tasks`` lists the registry). A plugin
that fails to import, or registers nothing under its entry point's name, is skipped with a one-line
warning naming the entry point and its package; the built-in tasks and gates keep working.
"""

from __future__ import annotations

import logging
from importlib.metadata import EntryPoint, entry_points

from synthdspy.registry import GATES, TASKS, Entry, registering_from

log = logging.getLogger(__name__)

GROUPS: dict[str, tuple[str, dict[str, Entry]]] = {"synthdspy.tasks": ("task", TASKS),
                                                   "synthdspy.gates": ("gate", GATES)}
_loaded = False


def package_of(ep: EntryPoint) -> str:
    """The distribution that declares ``ep`` (its module path when the distribution is unknown)."""
    dist = getattr(ep, "dist", None)
    return dist.name if dist is not None and dist.name else ep.value.split(":")[0].split(".")[0]


def load_entry_point(group: str, ep: EntryPoint) -> str | None:
    """Import one plugin entry point so that it registers.

    Returns:
        None when ``ep.name`` is registered in the group's table afterwards, else the one-line
        warning (entry point, package, what went wrong), which is also logged.
    """
    kind, table = GROUPS[group]
    package = package_of(ep)
    try:
        with registering_from(package):
            ep.load()
    except Exception as exc:  # any error in third-party code: skip the plugin, keep the rest working
        problem = f"failed to load ({type(exc).__name__}: {' '.join(str(exc).split())})"
    else:
        if ep.name in table:
            return None
        problem = f"registered no {kind} named {ep.name!r}"
    warning = f"plugin {group} entry point {ep.name!r} = {ep.value!r} from package {package!r} {problem}; skipped"
    log.warning(warning)
    return warning


def load_plugins() -> list[str]:
    """Load every ``synthdspy.tasks`` and ``synthdspy.gates`` entry point, once per process.

    Returns:
        The warnings of the plugins that were skipped (empty on later calls).
    """
    global _loaded
    if _loaded:
        return []
    _loaded = True
    warnings = []
    for group in GROUPS:
        for ep in sorted(entry_points(group=group), key=lambda e: e.name):
            warning = load_entry_point(group, ep)
            if warning:
                warnings.append(warning)
    return warnings
