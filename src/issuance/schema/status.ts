// What the engine writes about its resources: a Certificate's and an Issuer's status
// (the status subresource, or status.json beside the issued files) and the ACME order
// it may resume. The types are these schemas' outputs; the CRDs' status schemas are
// generated from them; and what is read back from disk or the API server is checked
// against them, not trusted.

import * as z from 'zod';

const time = z.string().meta({ description: 'RFC 3339.', format: 'date-time' });

const conditionStatus = z.enum(['True', 'False', 'Unknown']);

export const condition = z.object({
  type: z.enum(['Ready', 'Issuing']).meta({ description: 'Ready or Issuing.' }),
  status: conditionStatus,
  reason: z.string(),
  message: z.string(),
  lastTransitionTime: time,
});

const conditions = <C extends z.ZodType>(item: C) =>
  z
    .array(item)
    .max(8)
    .meta({
      description: 'Ready (and, for a Certificate, Issuing), as cert-manager reports them.',
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['type'],
    });

/** One authorization's challenge, as cert-manager's Challenge status shows it. */
export const challengeStatus = z.object({
  type: z.string().meta({ description: 'http-01 or dns-01 (the one the selected solver answers).' }),
  domain: z.string().meta({ description: 'The name being validated; *.example.com for a wildcard.' }),
  url: z.string(),
  state: z.string().meta({ description: 'pending, processing, valid or invalid (RFC 8555).' }),
  presented: z.boolean().meta({ description: 'True once the solver has published the token or TXT record.' }),
  reason: z.string().optional().meta({ description: 'Why the challenge failed (the CA problem document), or why it was not attempted.' }),
});

/** An ACME order as cert-manager's Order status shows it. */
export const orderStatus = z.object({
  url: z.string(),
  state: z.string().meta({ description: 'pending, ready, processing, valid or invalid (RFC 8555).' }),
  reason: z.string().optional().meta({ description: 'Why the order is invalid or could not go on.' }),
  challenges: z.array(challengeStatus).max(1000),
});

export const certificateStatus = z.object({
  conditions: conditions(condition),
  notBefore: time.optional(),
  notAfter: time.optional(),
  renewalTime: time.optional(),
  revision: z
    .int()
    .min(1)
    .optional()
    .meta({ description: 'Incremented on every issuance; the issued Secret carries it as envoy-sds.io/revision.' }),
  failedIssuanceAttempts: z
    .int()
    .min(0)
    .optional()
    .meta({ description: 'Consecutive failures; cleared by a success. Drives the backoff.' }),
  lastFailureTime: time.optional(),
  renewalRequestedAt: time.optional().meta({ description: 'Set by `envoy-sds renew`; cleared when the attempt it asked for ends.' }),
  order: orderStatus.optional().meta({
    description: 'The ACME order of the latest attempt and its challenges (what cert-manager shows as Order and Challenge resources).',
  }),
});

export const issuerStatus = z.object({
  conditions: conditions(condition.extend({ type: z.literal('Ready') })),
  acme: z.object({ uri: z.string().optional(), lastRegisteredEmail: z.string().optional() }).optional(),
});

/** An ACME order in progress, kept so a restart resumes it rather than ordering again. */
export const orderState = z.object({
  server: z.string(),
  accountUrl: z.string(),
  orderUrl: z.string(),
  /** The identifiers ordered, sorted; a spec change abandons the order. */
  identifiers: z.array(z.string()),
  /** SHA-256 of the next key's SubjectPublicKeyInfo: the key the CSR will carry. */
  publicKeySha256: z.string(),
  createdAt: z.string(),
});

/** A persisted Secret's annotations (file persistence keeps them in a JSON file). */
export const annotations = z.record(z.string(), z.string());
