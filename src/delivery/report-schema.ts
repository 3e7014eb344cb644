// A replica's delivery report as the others read it back from its ConfigMap: checked
// against the shape of delivery-report.ts's types (the compiler keeps the two equal),
// never trusted through a cast. A row that does not fit drops the whole report: it was
// not written by a server of this version.

import * as z from 'zod';
import { DELIVERY_STATES, type NodeDelivery, type SecretDelivery } from './delivery-report.js';

const version = z.string().nullable();

const secretDelivery: z.ZodType<SecretDelivery> = z.object({
  name: z.string(),
  state: z.enum(DELIVERY_STATES),
  current: version,
  sent: version,
  acked: version,
  behindSince: z.string().optional(),
  nack: z.object({ version: z.string(), message: z.string(), at: z.string() }).optional(),
  reason: z.enum(['denied', 'missing']).optional(),
});

const nodeDelivery: z.ZodType<NodeDelivery> = z.object({
  replica: z.string(),
  node: z.object({ id: z.string(), cluster: z.string() }),
  identity: z.string(),
  streams: z.int().min(0),
  secrets: z.array(secretDelivery),
});

export const publishedReport = z.object({
  replica: z.string(),
  publishedAt: z.string(),
  truncated: z.boolean().default(false),
  nodes: z.array(nodeDelivery),
});

export type PublishedReport = z.output<typeof publishedReport>;
