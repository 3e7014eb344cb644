// What every issuance resource document has around its spec: apiVersion, kind, metadata.

import * as z from 'zod';
import { ignored, nonEmpty } from '../../config/schema/fields.js';
import { API_VERSION } from '../resources.js';
import { dnsLabelName } from './names.js';

const stringMap = z.record(z.string(), nonEmpty).nullable().optional();

export const resourceEnvelope = z.strictObject({
  apiVersion: nonEmpty.refine((v) => v === API_VERSION, {
    error: (iss) => {
      const got = String(iss.input);
      const hint = got.startsWith('cert-manager.io/') ? ` (cert-manager YAML works here with apiVersion changed to ${API_VERSION})` : '';
      return `must be ${API_VERSION}, got "${got}"${hint}`;
    },
  }),
  kind: z.enum(['Issuer', 'ClusterIssuer', 'Certificate'], {
    error: (iss) => `must be Issuer, ClusterIssuer or Certificate (got ${JSON.stringify(iss.input)})`,
  }),
  metadata: z.strictObject({
    name: dnsLabelName,
    namespace: dnsLabelName.nullable().optional(),
    labels: stringMap,
    annotations: stringMap,
    uid: ignored(z.unknown()),
    resourceVersion: ignored(z.unknown()),
    generation: ignored(z.unknown()),
    creationTimestamp: ignored(z.unknown()),
  }),
  spec: z.unknown(),
  // A resource copied from `kubectl get -o yaml` keeps its status; it is not read.
  status: z.unknown().optional(),
});
