"""Smoke check of a provisioned Airflow: `airflow version` and a DagBag load, without a metadata database.

Usage: python check_airflow.py EXPECTED_AIRFLOW_VERSION

Runs in the host venvs (.state/airflow-venv, .state/airflow2-venv) and in the stand-in Runtime image. Everything happens under a
throwaway AIRFLOW_HOME, so it neither needs nor leaves an airflow.cfg or airflow.db behind. Prints one summary
line on stdout; Airflow's own logging goes to stderr. Exits non-zero when anything is off.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

GOOD_DAG = """\
from datetime import datetime

try:  # Airflow 3
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG
except ImportError:  # Airflow 2
    from airflow.operators.empty import EmptyOperator
    from airflow import DAG

with DAG(dag_id="provision_smoke", start_date=datetime(2024, 1, 1), schedule=None):
    EmptyOperator(task_id="noop")
"""

# DagBag's safe mode skips files that mention neither "airflow" nor "dag", so the broken file mentions both.
BROKEN_DAG = """\
from airflow import DAG  # noqa: F401
import module_that_does_not_exist  # noqa: F401
"""


def report(line: str) -> None:
    sys.stdout.flush()
    os.dup2(REAL_STDOUT, 1)
    print(line, flush=True)


def fail(message: str) -> None:
    report(f"check_airflow: FAILED: {message}")
    sys.exit(1)


# Airflow logs to stdout; keep stdout for the summary line by pointing fd 1 at stderr until the end.
REAL_STDOUT = os.dup(1)
os.dup2(2, 1)


def main() -> None:
    if len(sys.argv) != 2:
        fail("usage: check_airflow.py EXPECTED_AIRFLOW_VERSION")
    expected = sys.argv[1]

    with tempfile.TemporaryDirectory(prefix="astro-airflow-check-") as tmp:
        home = Path(tmp, "airflow-home")
        dags = Path(tmp, "dags")
        home.mkdir()
        dags.mkdir()
        (dags / "good.py").write_text(GOOD_DAG)
        (dags / "broken.py").write_text(BROKEN_DAG)
        # Airflow reads its configuration when first imported, so the environment must be set before that.
        os.environ["AIRFLOW_HOME"] = str(home)
        os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
        os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(dags)

        airflow_cli = Path(sys.executable).parent / "airflow"
        cli = subprocess.run(
            [str(airflow_cli), "version"], capture_output=True, text=True, timeout=120, check=False
        )
        cli_version = cli.stdout.strip().splitlines()[-1] if cli.stdout.strip() else ""
        if cli.returncode != 0 or cli_version != expected:
            sys.stderr.write(cli.stderr)
            fail(f"`airflow version` exited {cli.returncode} with {cli_version!r}, expected {expected!r}")

        import airflow
        from airflow.models.dagbag import DagBag

        if airflow.__version__ != expected:
            fail(f"imported airflow {airflow.__version__}, expected {expected}")
        bag = DagBag(dag_folder=str(dags), include_examples=False)
        if sorted(bag.dag_ids) != ["provision_smoke"]:
            fail(f"DagBag loaded {sorted(bag.dag_ids)}, expected ['provision_smoke']")
        errors = {Path(path).name: text for path, text in bag.import_errors.items()}
        if list(errors) != ["broken.py"] or "ModuleNotFoundError" not in errors["broken.py"]:
            fail(f"DagBag import errors {errors}, expected one ModuleNotFoundError in broken.py")
        leftovers = sorted(p.name for p in home.iterdir() if p.name not in ("logs",))

    report(
        f"check_airflow: ok: airflow {airflow.__version__} on Python {sys.version.split()[0]}; "
        f"DagBag loaded provision_smoke and reported broken.py; AIRFLOW_HOME gained {leftovers or 'nothing'}"
    )


if __name__ == "__main__":
    main()
