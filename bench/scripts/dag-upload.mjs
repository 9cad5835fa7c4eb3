// The bench candidate: what `astro deploy --dags` does for the bundle, from the compiled CLI (npm run build).
// Plain JavaScript so that timing measures astro, not a TypeScript loader. Usage: dag-upload.mjs <dags-dir> <sas-url>
import { createDagBundle } from '../../dist/bundle/tarball.js';
import { uploadDagBundle } from '../../dist/bundle/upload.js';

const [sourceDir, sasUrl] = process.argv.slice(2);
const bundle = await createDagBundle({ sourceDir });
const { versionId } = await uploadDagBundle({ sasUrl, data: bundle.data });
if (!versionId) throw new Error('no version');
