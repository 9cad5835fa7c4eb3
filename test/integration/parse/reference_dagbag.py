"""Reference for the equivalence tests: the default DAG integrity test's steps done directly with Airflow, in one
process, with one DagBag() call (no harness code involved).

Run with the project as working directory and AIRFLOW_HOME, plus throwaway database/log settings, in the
environment. Prints one JSON document: every import error (path relative to AIRFLOW_HOME, as the test labels it),
the DAG ids DagBag loaded, and the failing paths after `.astro/dag_integrity_exceptions.txt`.
"""

import json
import logging
import os
import sys

from airflow.hooks.base import BaseHook
from airflow.models import Connection, DagBag, Variable
from airflow.utils.db import initdb

initdb()

real_environ_get = os.environ.get
unset = object()


def fake_connection(conn_id, *args, **kwargs):
    return Connection(conn_id)


def fake_getenv(name, *args, **kwargs):
    fallback = args[0] if args else None
    if kwargs:
        fallback = kwargs.get("default")
    current = real_environ_get(name, None)
    if current:
        return current
    if fallback is None and name in ("JENKINS_HOME", "PYTEST_THEME"):
        return None
    return fallback if fallback else "MOCKED_" + name.upper() + "_VALUE"


class AnyKey(dict):
    def __getitem__(self, key):
        return "MOCKED_KEY_VALUE"


def fake_variable(key, default_var=unset, deserialize_json=False):
    if default_var is not unset:
        return default_var
    return AnyKey() if deserialize_json else "NON_DEFAULT_MOCKED_VARIABLE_VALUE"


BaseHook.get_connection = fake_connection
os.getenv = fake_getenv
Variable.get = fake_variable
try:
    from airflow import sdk

    if hasattr(sdk, "Variable"):
        sdk.Variable.get = fake_variable
except ImportError:
    pass

airflow_logger = logging.getLogger("airflow")
airflow_logger.disabled = True
home = os.environ.get("AIRFLOW_HOME")
try:
    bag = DagBag(include_examples=False)
except BaseException:
    # Airflow 2's DagBag lets a DAG file's sys.exit() through: the integrity test module fails to load, so pytest
    # reports a collection error and no per-file verdicts. Name the DAG file that ended it.
    import traceback

    frames = [frame.filename for frame in traceback.extract_tb(sys.exc_info()[2])]
    culprit = next((f for f in reversed(frames) if f.startswith(os.path.join(home, "dags", ""))), None)
    sys.stdout.flush()
    os.write(3, json.dumps({"aborted": True, "abortedBy": culprit and os.path.relpath(culprit, home),
                            "importErrors": {}, "dagIds": [], "failing": []}).encode())
    os._exit(0)
airflow_logger.disabled = False

errors = {os.path.relpath(path, home): message.strip() for path, message in bag.import_errors.items()}
exceptions = []
if os.path.exists(".astro/dag_integrity_exceptions.txt"):
    with open(".astro/dag_integrity_exceptions.txt") as listed:
        exceptions = [line.strip() for line in listed]
document = {
    "importErrors": errors,
    "dagIds": sorted(bag.dags),
    "failing": sorted(path for path in errors if path not in exceptions),
}
sys.stdout.flush()
os.write(3, json.dumps(document).encode())
