/** Every image label astro reads or writes, named once. */

/** The Astro Runtime version of an image (set by Runtime base images). */
export const RUNTIME_VERSION_LABEL = 'io.astronomer.docker.runtime.version';
/** The Airflow version of an image (Astronomer Certified and Runtime images). */
export const AIRFLOW_VERSION_LABEL = 'io.astronomer.docker.airflow.version';
/** The deploy's description, written by every deploy build. */
export const DESCRIPTION_LABEL = 'io.astronomer.deploy.revision.description';
/** The git commit an Astro deploy was built from. */
export const COMMIT_LABEL = 'io.astronomer.deploy.revision.commit';
/** Software deploys mark their builds so Houston does not look for revision metadata. */
export const SKIP_REVISION_LABEL = 'io.astronomer.skip.revision';
/** The image inputs digest the deploy plan computed for this build, so the pushed image itself says what made it. */
export const IMAGE_INPUTS_LABEL = 'io.astronomer.deploy.image-inputs';
