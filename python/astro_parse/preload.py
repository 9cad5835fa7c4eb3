"""Imports, in the supervisor and before the workers are forked, the installed modules the DAG files share, so
each worker does not import them again."""

import ast
import os
import signal
import sys


def _module_level_imports(path):
    """Absolute module names imported at module level (not inside functions, which run at task time)."""
    import ast

    try:
        with open(path, "rb") as source:
            tree = ast.parse(source.read())
    except Exception:
        return []
    names = []
    pending = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                names.append(node.module)
                names.extend(node.module + "." + alias.name for alias in node.names if alias.name != "*")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        else:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.stmt):
                    pending.append(child)
    return names


def _is_project_module(top_name, local_roots):
    import importlib.util

    try:
        spec = importlib.util.find_spec(top_name)
    except BaseException:
        return True
    if spec is None:
        return True
    locations = list(spec.submodule_search_locations or [])
    if spec.origin and spec.origin not in ("built-in", "frozen"):
        locations.append(spec.origin)
    for location in locations:
        location = os.path.abspath(location)
        for root in local_roots:
            if location == root or location.startswith(root.rstrip(os.sep) + os.sep):
                return True
    return False


def shared_imports(files):
    """The modules worth importing before the workers fork: Airflow's own always; other installed modules only when
    several files share them (a module one file imports is imported once either way, and importing it with that
    file keeps the file's own set-up, e.g. environment variables it sets first, in effect)."""
    counts = {}
    for path in files:
        if not path.endswith(".py"):
            continue
        for name in dict.fromkeys(_module_level_imports(path)):
            counts[name] = counts.get(name, 0) + 1
    return [name for name, count in counts.items() if count >= 2 or name == "airflow" or name.startswith("airflow.")]


def preload(files, local_roots, per_module_timeout):
    """Imports, once, the installed (non-project) modules the DAG files import at module level, so that forked
    workers do not each pay for them. DagBag, which imports every file in one process, pays once too. A module that
    fails or hangs is left for the worker, where the error belongs to the DAG file. Returns the modules imported."""
    return import_installed(shared_imports(files), local_roots, per_module_timeout)


def import_installed(names, local_roots, per_module_timeout):
    """Imports each named module that is installed (not the project's own), packages before their submodules."""
    import importlib

    wanted = sorted(names, key=lambda name: name.count("."))
    project_tops = {}
    loaded = []
    previous = signal.getsignal(signal.SIGALRM)

    def on_alarm(signum, frame):
        raise TimeoutError("preload timed out")

    signal.signal(signal.SIGALRM, on_alarm)
    try:
        for name in wanted:
            if name in sys.modules:
                continue
            parent, _, attribute = name.rpartition(".")
            if parent and hasattr(sys.modules.get(parent), attribute):
                continue  # `from module import name` named an attribute, not a submodule
            top = name.split(".")[0]
            if top not in project_tops:
                project_tops[top] = _is_project_module(top, local_roots)
            if project_tops[top]:
                continue
            signal.setitimer(signal.ITIMER_REAL, per_module_timeout)
            try:
                importlib.import_module(name)
                loaded.append(name)
            except BaseException:
                # As in DagBag, a failed import leaves behind what Python leaves (not the failing module itself);
                # the worker meets the error again, where it belongs to the DAG file.
                pass
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
    finally:
        signal.signal(signal.SIGALRM, previous)
    return loaded
