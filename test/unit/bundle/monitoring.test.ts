import { describe, expect, it } from 'vitest';
import { MONITORING_DAG_FILE, monitoringDag, needsMonitoringDag } from '../../../src/bundle/monitoring.js';
import { UserError } from '../../../src/errors.js';

describe('the Hybrid monitoring DAG', () => {
  it('goes with Hybrid Deployments only, and never in a Hosted organization', () => {
    expect(needsMonitoringDag({ deploymentType: 'HYBRID', organizationProduct: 'HYBRID' })).toBe(true);
    // API token sessions may not know the product: a Hybrid Deployment exists in Hybrid organizations only.
    expect(needsMonitoringDag({ deploymentType: 'HYBRID' })).toBe(true);
    expect(needsMonitoringDag({ deploymentType: 'HYBRID', organizationProduct: 'HOSTED' })).toBe(false);
    for (const deploymentType of ['DEDICATED', 'STANDARD', undefined]) {
      expect(needsMonitoringDag({ deploymentType, organizationProduct: 'HYBRID' })).toBe(false);
    }
  });

  it("imports what the Deployment's Airflow major has", () => {
    const af3 = monitoringDag('3.1-8');
    expect(af3.rel).toBe(MONITORING_DAG_FILE);
    expect(af3.content.toString()).toContain('from airflow.sdk import DAG');
    expect(af3.content.toString()).toContain('from airflow.providers.standard.operators.bash import BashOperator');
    for (const version of ['12.5.0', '11.3.0', 'v13.1.0']) {
      const af2 = monitoringDag(version).content.toString();
      expect(af2).toContain('from airflow import DAG');
      expect(af2).toContain('from airflow.operators.bash import BashOperator');
    }
    for (const text of [af3.content.toString(), monitoringDag('12.5.0').content.toString()]) {
      expect(text).toContain('dag_id="astronomer_monitoring_dag"');
      expect(text).toContain('AIRFLOW_MONITORING_DAG_SCHEDULE_INTERVAL');
      expect(text).toContain('PAUSE_ASTRONOMER_MONITORING_DAG');
    }
  });

  it('refuses a Runtime version that names no Airflow major, naming it', () => {
    for (const version of ['', 'latest', '4.0-1', 'banana']) {
      const call = () => monitoringDag(version);
      expect(call).toThrow(UserError);
      expect(call).toThrow(`Runtime "${version}"`);
    }
  });
});
