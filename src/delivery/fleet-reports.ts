import { createHash } from 'node:crypto';
import type { Logger } from '../observability/logger.js';
import { readPersisted } from '../config/schema/read-json.js';
import type { NodeDelivery } from './delivery-report.js';
import { publishedReport, type PublishedReport } from './report-schema.js';

/** The one client call this needs (KubeClient.request). */
export interface FleetClient {
  request<T = Record<string, unknown>>(
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    path: string,
    opts?: { body?: unknown; query?: Record<string, string | number | boolean | undefined> },
  ): Promise<T>;
}

export const REPORT_LABEL = 'envoy-sds.io/delivery-report';
/** Under the API server's 1 MiB object limit, with room for metadata. */
const MAX_REPORT_BYTES = 900_000;
/** A published report is rewritten at least this often, so a dead replica's report ages out. */
const HEARTBEAT_MS = 30_000;

type Report = PublishedReport;

interface ConfigMap {
  metadata: { name: string; resourceVersion?: string; labels?: Record<string, string> };
  data?: Record<string, string>;
}

export interface FleetReportsOptions {
  client: FleetClient;
  namespace: string;
  replica: string;
  publishMs: number;
  /** This replica's rows, live. */
  local: () => NodeDelivery[];
  logger: Logger;
  now?: () => number;
}

/**
 * Fleet-wide delivery state through the API server: each replica writes its streams'
 * state as one small ConfigMap (at most every `publishMs`, when it changed, and on a
 * heartbeat), and reads the others' when asked, so any replica answers "which gateways
 * still run the old certificate?" for the whole fleet. Reports of replicas that stopped
 * writing age out after a few heartbeats; a replica deletes its own on stop.
 */
export class FleetReports {
  private timer: NodeJS.Timeout | undefined;
  private lastJson = '';
  private lastWrite = 0;
  private writing: Promise<void> | undefined;
  private cache: { at: number; rows: NodeDelivery[] } | undefined;
  private readonly now: () => number;
  readonly configMapName: string;

  constructor(private readonly opts: FleetReportsOptions) {
    this.now = opts.now ?? Date.now;
    this.configMapName = configMapNameFor(opts.replica);
  }

  /** This replica's rows, under the name it publishes them as. */
  private local(): NodeDelivery[] {
    return this.opts.local().map((n) => ({ ...n, replica: this.opts.replica }));
  }

  start(): void {
    const tick = () => {
      this.writing ??= this.publish()
        .catch((err: unknown) => this.opts.logger.warn({ err: (err as Error).message }, 'could not publish delivery status'))
        .finally(() => (this.writing = undefined));
    };
    tick();
    this.timer = setInterval(tick, this.opts.publishMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.writing;
    await this.opts.client.request('DELETE', this.path(this.configMapName)).catch(() => undefined);
  }

  /** Writes this replica's report when it changed (or the heartbeat is due). */
  async publish(): Promise<void> {
    const nodes = this.local();
    const json = JSON.stringify(nodes);
    if (json === this.lastJson && this.now() - this.lastWrite < HEARTBEAT_MS) return;
    const report = boundedReport(this.opts.replica, new Date(this.now()).toISOString(), nodes);
    const body: ConfigMap & { apiVersion: string; kind: string } = {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: this.configMapName, labels: { [REPORT_LABEL]: 'true', 'app.kubernetes.io/name': 'envoy-sds' } },
      data: { 'report.json': JSON.stringify(report) },
    };
    try {
      const existing = await this.opts.client.request<ConfigMap>('GET', this.path(this.configMapName));
      body.metadata.resourceVersion = existing.metadata.resourceVersion!;
      await this.opts.client.request('PUT', this.path(this.configMapName), { body });
    } catch (err) {
      if ((err as { status?: number }).status !== 404) throw err;
      await this.opts.client.request('POST', this.path(), { body });
    }
    this.lastJson = json;
    this.lastWrite = this.now();
  }

  /** Every replica's rows: this one's live, the others' as last published (cached 1 s). */
  async fleet(): Promise<NodeDelivery[]> {
    const local = this.local();
    if (this.cache && this.now() - this.cache.at < 1000) return [...local, ...this.cache.rows];
    const list = await this.opts.client.request<{ items?: ConfigMap[] }>('GET', this.path(), {
      query: { labelSelector: `${REPORT_LABEL}=true` },
    });
    const maxAge = Math.max(3 * HEARTBEAT_MS, 3 * this.opts.publishMs);
    const rows: NodeDelivery[] = [];
    for (const cm of list.items ?? []) {
      if (cm.metadata.name === this.configMapName) continue;
      const report = parseReport(cm.data?.['report.json']);
      if (!report || this.now() - Date.parse(report.publishedAt) > maxAge) continue;
      rows.push(...report.nodes.map((n) => ({ ...n, replica: report.replica })));
    }
    this.cache = { at: this.now(), rows };
    return [...local, ...rows];
  }

  private path(name?: string): string {
    return `/api/v1/namespaces/${encodeURIComponent(this.opts.namespace)}/configmaps${name ? `/${name}` : ''}`;
  }
}

/** A DNS-1123 name per replica; a hash keeps names that had to be changed apart. */
export function configMapNameFor(replica: string): string {
  const clean = replica
    .toLowerCase()
    .replace(/[^a-z0-9.-]/g, '-')
    .replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '')
    .slice(0, 200);
  const suffix = clean === replica && clean.length > 0 ? '' : `-${createHash('sha256').update(replica).digest('hex').slice(0, 8)}`;
  return `envoy-sds-delivery-${clean || 'replica'}${suffix}`;
}

/** A report under the size limit: nodes with something to look at are kept first. */
function boundedReport(replica: string, publishedAt: string, nodes: NodeDelivery[]): Report {
  const report: Report = { replica, publishedAt, truncated: false, nodes };
  if (JSON.stringify(report).length <= MAX_REPORT_BYTES) return report;
  const ordered = [...nodes].sort((a, b) => Number(allSynced(a)) - Number(allSynced(b)));
  const kept: NodeDelivery[] = [];
  let size = JSON.stringify({ ...report, nodes: [], truncated: true }).length;
  for (const n of ordered) {
    const s = JSON.stringify(n).length + 1;
    if (size + s > MAX_REPORT_BYTES) break;
    kept.push(n);
    size += s;
  }
  return { ...report, truncated: true, nodes: kept };
}

function allSynced(n: NodeDelivery): boolean {
  return n.secrets.every((s) => s.state === 'SYNCED');
}

/** A report read back from the API server: checked, never trusted through a cast. */
function parseReport(text: string | undefined): Report | undefined {
  return readPersisted(publishedReport, text);
}
