"""Paths as the default DAG integrity test reports them."""

import os
import re

_FILE_LINE = re.compile(r'File "([^"]+)", line (\d+)')


def relpath(path, airflow_home):
    """Relative to AIRFLOW_HOME, as the integrity test labels files (and as its exceptions file lists them)."""
    try:
        return os.path.relpath(path, airflow_home)
    except ValueError:
        return path


def error_line(message, path):
    """The line of the last traceback frame in this file, if the message is a traceback that has one."""
    line = None
    for match in _FILE_LINE.finditer(message):
        if match.group(1) == path:
            line = int(match.group(2))
    return line
