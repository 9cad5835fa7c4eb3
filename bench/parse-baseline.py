"""Baseline for bench/parse.bench.ts: one DagBag() call in the same venv, with the default integrity test's
mocks (without them a fifth of the generated DAGs fail on their connection lookups), as a fresh process would make
it. Its database step (initdb) is left out, which only makes the baseline faster."""
import logging
import os

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
bag = DagBag(include_examples=False)
assert not bag.import_errors, bag.import_errors
print(f"{len(bag.dags)} DAGs")
