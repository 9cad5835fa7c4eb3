/**
 * Which Deployment a deploy goes to: the positional id, --deployment-name, the project's saved id, the only
 * Deployment there is (for API tokens or auto_select), or a prompt on a terminal.
 */
import { UserError } from '../../errors.js';
import type { AstroControlPlane } from '../../platform/astro/client.js';
import type { Deployment } from '../../platform/astro/schemas.js';
import { byString } from '../../util/compare.js';

export interface SelectionInput {
  organizationId: string;
  /** Lists are filtered to this workspace (the flag's, else the session's). */
  workspaceId?: string;
  /** --workspace-id: the chosen Deployment must belong to it. */
  workspaceFlag?: string;
  deploymentId?: string;
  deploymentName?: string;
  savedDeploymentId?: string;
  /** --prompt: ignore the saved id and choose from the list. */
  prompt: boolean;
  /** API token sessions and `auto_select` take the only Deployment without asking. */
  autoSelect: boolean;
}

export interface SelectionPorts {
  controlPlane: AstroControlPlane;
  /** Numbered choice on a terminal; throws NeedsInputError without one. */
  choose: (title: string, choices: { label: string; value: Deployment }[], flags: string[]) => Promise<Deployment>;
  notice: (message: string) => void;
  signal?: AbortSignal;
}

const NOT_FOUND_HINT = 'the Deployment specified was not found in this workspace. Your account or API Key may not have access to the deployment specified';

export async function chooseDeployment(input: SelectionInput, ports: SelectionPorts): Promise<Deployment> {
  const { controlPlane, notice, signal } = ports;
  let id = input.deploymentId;
  if (id && input.deploymentName) {
    notice(`Both a Deployment ID and Deployment name have been supplied. The Deployment ID ${id} will be used for the Deploy`);
  }
  if (!id && !input.deploymentName && !input.prompt && input.savedDeploymentId) {
    id = input.savedDeploymentId;
    notice('Deployment ID found in the config file. This Deployment ID will be used for the deploy');
  }

  let deployment: Deployment;
  if (id) {
    deployment = await controlPlane.getDeployment(input.organizationId, id, signal).catch((error: unknown) => {
      if ((error as { status?: number }).status === 404) {
        throw new UserError(`Deployment ${id} was not found: ${NOT_FOUND_HINT}`, {
          cause: error,
          nextStep: 'Check the id with the Astro UI, or run astro deploy without an id to choose from a list.',
        });
      }
      throw error;
    });
  } else {
    const listed = await controlPlane.listDeployments(input.organizationId, input.workspaceId ? { workspaceIds: [input.workspaceId] } : {}, signal);
    if (input.deploymentName) {
      const named = listed.filter((d) => d.name === input.deploymentName);
      if (named.length === 0) {
        throw new UserError(`No Deployment with the name ${input.deploymentName} was found: ${NOT_FOUND_HINT}`, {
          nextStep: listed.length > 0 ? `Deployments here: ${listed.map((d) => d.name).join(', ')}` : undefined,
        });
      }
      if (named.length > 1) notice(`More than one Deployment with the name ${input.deploymentName} was found`);
      deployment = named[0]!;
    } else if (listed.length === 0) {
      throw new UserError(`No Deployments were found${input.workspaceId ? ` in workspace ${input.workspaceId}` : ''}.`, {
        nextStep: 'Create a Deployment in the Astro UI first, or check the workspace of your context.',
      });
    } else if (listed.length === 1 && input.autoSelect) {
      deployment = listed[0]!;
      notice(`Only one Deployment was found. Using the following Deployment by default: ${deployment.name} (${deployment.id})`);
    } else {
      const sorted = [...listed].sort((a, b) => byString(a.createdAt ?? '', b.createdAt ?? ''));
      deployment = await ports.choose(
        'Select a Deployment',
        sorted.map((d) => ({ label: `${d.name}  ${d.namespace}  ${d.id}  DAG deploy ${d.isDagDeployEnabled ? 'enabled' : 'disabled'}`, value: d })),
        ['<deployment-id>', '--deployment-name'],
      );
    }
  }

  if (input.workspaceFlag && deployment.workspaceId !== input.workspaceFlag) {
    throw new UserError(`Invalid workspace id ${input.workspaceFlag} was provided through the --workspace-id flag`, {
      nextStep: `Deployment ${deployment.name} belongs to workspace ${deployment.workspaceId}.`,
    });
  }
  return deployment;
}
