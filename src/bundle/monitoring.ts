/**
 * The monitoring DAG of Hybrid Deployments. On Astro Hybrid, Astronomer watches a Deployment's workers through a DAG
 * with the id `astronomer_monitoring_dag` that every deploy brings along in the DAG bundle (Astronomer's CLI adds it,
 * so a Hybrid Deployment deployed without it loses that watch). Ours is written here, not copied: one task on the
 * default queue every five minutes, at the highest priority, with the two Deployment variables Astronomer documents
 * for it (`AIRFLOW_MONITORING_DAG_SCHEDULE_INTERVAL`, `PAUSE_ASTRONOMER_MONITORING_DAG`).
 *
 * It only ever exists inside the bundle: nothing is written into the user's DAGs folder.
 */
import { airflowMajorForRuntimeVersion } from '../image/runtime/version.js';
import { UserError } from '../errors.js';

export const MONITORING_DAG_FILE = 'astronomer_monitoring_dag.py';

/** A file the bundle carries that is not in the DAGs folder. */
export interface GeneratedBundleFile {
  /** Path inside the DAGs folder, forward slashes. */
  rel: string;
  content: Buffer;
}

/** Astro Hybrid only: Hosted organizations and Dedicated or Standard Deployments are watched without it. */
export function needsMonitoringDag(input: { deploymentType?: string; organizationProduct?: string }): boolean {
  return input.deploymentType === 'HYBRID' && input.organizationProduct !== 'HOSTED';
}

/** The imports of each Airflow major: Airflow 3 has DAG in its SDK and BashOperator in the standard provider Runtime 3 ships. */
const IMPORTS: Record<string, { dag: string; bash: string }> = {
  '2': { dag: 'from airflow import DAG', bash: 'from airflow.operators.bash import BashOperator' },
  '3': { dag: 'from airflow.sdk import DAG', bash: 'from airflow.providers.standard.operators.bash import BashOperator' },
};

/** The monitoring DAG for a Deployment on `runtimeVersion` (its Airflow major decides the imports). */
export function monitoringDag(runtimeVersion: string): GeneratedBundleFile {
  const imports = IMPORTS[airflowMajorForRuntimeVersion(runtimeVersion)];
  if (!imports) {
    throw new UserError(
      `This Hybrid Deployment runs Runtime "${runtimeVersion}", which is no Airflow 2 or 3 version, so its monitoring DAG cannot be added to the DAG bundle.`,
      { nextStep: "Check the Deployment's Runtime version in the Astro UI, or run `astro deployment inspect` to see it." },
    );
  }
  return { rel: MONITORING_DAG_FILE, content: Buffer.from(monitoringDagSource(imports.dag, imports.bash), 'utf8') };
}

function monitoringDagSource(dagImport: string, bashImport: string): string {
  return `"""Worker health check of an Astro Hybrid Deployment, added to the DAG bundle by \`astro deploy\`.

Astronomer alerts the Organization by email when its task stops succeeding. It runs every five minutes on the
default queue; set AIRFLOW_MONITORING_DAG_SCHEDULE_INTERVAL (a cron expression) to change that, and
PAUSE_ASTRONOMER_MONITORING_DAG=true to have it created paused.
"""

import os
from datetime import timedelta

import pendulum
${dagImport}
${bashImport}

SCHEDULE = os.environ.get("AIRFLOW_MONITORING_DAG_SCHEDULE_INTERVAL", "*/5 * * * *")
PAUSED = os.environ.get("PAUSE_ASTRONOMER_MONITORING_DAG", "false").strip().lower() == "true"

with DAG(
    dag_id="astronomer_monitoring_dag",
    schedule=SCHEDULE,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    is_paused_upon_creation=PAUSED,
    dagrun_timeout=timedelta(minutes=30),
    description="Worker health check of this Hybrid Deployment, watched by Astronomer.",
    doc_md=__doc__,
    tags=["monitoring"],
):
    BashOperator(
        task_id="hello",
        bash_command="echo worker reachable",
        depends_on_past=False,
        priority_weight=2**31 - 1,
        do_xcom_push=False,
    )
`;
}
