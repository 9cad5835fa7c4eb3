"""Baseline for bench/parse.bench.ts: one DagBag() call in the same venv, with the default integrity test's
mocks (without them a fifth of the generated DAGs fail on their connection lookups), as a fresh process would make
it. Its database step (initdb) is left out, which only makes the baseline faster.

With --import-only it stops before the DagBag: Python's start and Airflow's import, which any run in a fresh
Python process pays before it parses a single file (the floor of the "one file changed" row)."""
import logging
import os
import sys

from airflow.hooks.base import BaseHook
from airflow.models import Connection, DagBag, Variable

getenv = os.environ.get
BaseHook.get_connection = lambda conn_id, *a, **k: Connection(conn_id)
os.getenv = lambda name, default=None: getenv(name) or default or f"MOCKED_{name.upper()}_VALUE"
Variable.get = lambda key, default_var=None, deserialize_json=False: default_var or "NON_DEFAULT_MOCKED_VARIABLE_VALUE"
try:
    from airflow import sdk  # noqa: E402  (Airflow 3)

    sdk.Variable.get = Variable.get
except ImportError:
    pass
logging.getLogger("airflow").disabled = True
if "--import-only" in sys.argv:
    os._exit(0)  # as astro's harness ends: no interpreter teardown, which the DagBag run pays on top
bag = DagBag(include_examples=False)
assert not bag.import_errors, bag.import_errors
print(f"{len(bag.dags)} DAGs")
