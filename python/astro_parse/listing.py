"""Which files DagBag would parse, using Airflow's own discovery so `.airflowignore` (both syntaxes), symlinks,
zip files and the safe-mode "might contain a DAG" heuristic behave exactly as in the installed Airflow."""

import inspect
import os
import zipfile


def _safe_mode():
    from airflow.configuration import conf

    return conf.getboolean("core", "DAG_DISCOVERY_SAFE_MODE")


def _ignore_syntax():
    from airflow.configuration import conf

    return conf.get("core", "DAG_IGNORE_FILE_SYNTAX", fallback="glob") or "glob"


def list_dag_files(dags_folder):
    """Returns (files DagBag parses, in its order; skipped candidate files with the reason; discovery settings;
    Python files that cannot be read, with the reason: DagBag passes over them without a word, but a file that
    cannot be read cannot be deployed either, so the parse reports it)."""
    from airflow.utils.file import list_py_file_paths

    safe_mode = _safe_mode()
    kwargs = {"safe_mode": safe_mode}
    if "include_examples" in inspect.signature(list_py_file_paths).parameters:
        # Airflow 2 adds its own example DAGs unless told not to; the integrity test's DagBag(include_examples=False)
        # never parses them.
        kwargs["include_examples"] = False
    files = list_py_file_paths(dags_folder, **kwargs)
    listed = set(files)
    skipped = []
    unreadable = []
    if os.path.isdir(dags_folder):
        not_ignored = set(_not_ignored_paths(dags_folder))
        # Only directories Airflow walked are reported on; an ignored directory is not descended into (it may be
        # a virtualenv or node_modules with thousands of files).
        walked = {os.path.normpath(dags_folder)}
        for path in not_ignored:
            parent = os.path.dirname(path)
            while parent not in walked and len(parent) > len(dags_folder):
                walked.add(parent)
                parent = os.path.dirname(parent)
        for directory in sorted(walked):
            try:
                names = sorted(os.listdir(directory))
            except OSError:
                continue
            for name in names:
                path = os.path.join(directory, name)
                if path in listed or name == ".airflowignore":
                    continue
                if path in not_ignored and path.endswith(".py"):
                    problem = _unreadable(path)
                    if problem is not None:
                        unreadable.append({"path": path, "message": problem})
                        continue
                if not _is_candidate(path):
                    continue
                reason = "no-dag-heuristic" if path in not_ignored else "airflowignore"
                skipped.append({"path": path, "reason": reason})
    return files, skipped, unreadable, {"safeMode": safe_mode, "ignoreSyntax": _ignore_syntax()}


def _unreadable(path):
    try:
        with open(path, "rb") as source:
            source.read(1)
    except IsADirectoryError:
        return None
    except OSError as error:
        return f"{type(error).__name__}: [Errno {error.errno}] {error.strerror}: {path!r}: the DAG file cannot be read"
    return None


def _not_ignored_paths(dags_folder):
    try:
        from airflow.utils.file import find_path_from_directory

        return list(find_path_from_directory(dags_folder, ".airflowignore", _ignore_syntax()))
    except Exception:
        return []


def _is_candidate(path):
    try:
        return os.path.isfile(path) and (path.endswith(".py") or zipfile.is_zipfile(path))
    except OSError:
        return False
