// Writes deploy/crds/*.yaml and the Helm chart's copies from the schemas (after a build).
import { writeFileSync } from 'node:fs';
import { customResourceDefinitions } from '../dist/src/issuance/schema/custom-resource-definitions.js';

for (const [file, text] of customResourceDefinitions()) {
  for (const dir of ['deploy/crds', 'deploy/helm/envoy-sds/crds']) writeFileSync(`${dir}/${file}`, text);
}
