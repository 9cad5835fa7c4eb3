"""astro's DAG parse harness.

Run by the TypeScript runner in src/parse/ as a subprocess, on the host or inside the project image. It gives the
same verdicts as the default DAG integrity test of the Astro CLI (Airflow's DagBag plus its mocks), but imports
Airflow once and parses each DAG file in a forked, sandboxed worker. Standard library only, apart from Airflow.
"""

PROTOCOL_VERSION = 1
