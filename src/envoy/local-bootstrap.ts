import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';

/** envoy-config/ at the package root (this file runs from dist/src/envoy/). */
export const ENVOY_CONFIG_DIR = fileURLToPath(new URL('../../../envoy-config/', import.meta.url));

/**
 * The Envoy bootstrap for the local default: envoy-config/gateway-tcp.yaml (the file
 * the tests validate against upstream protos) with the SDS cluster pointed at the
 * address this server actually bound.
 */
export function localBootstrap(sdsAddress: string): Record<string, unknown> {
  const doc = parse(readFileSync(ENVOY_CONFIG_DIR + 'gateway-tcp.yaml', 'utf8')) as Record<string, unknown>;
  const i = sdsAddress.lastIndexOf(':');
  const host = sdsAddress.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(sdsAddress.slice(i + 1));
  const clusters = (doc['static_resources'] as { clusters: Array<Record<string, unknown>> }).clusters;
  const sds = clusters.find((c) => c['name'] === 'sds-server');
  if (!sds) throw new Error('envoy-config/gateway-tcp.yaml has no sds-server cluster');
  sds['load_assignment'] = {
    cluster_name: 'sds-server',
    endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: host, port_value: port } } } }] }],
  };
  return doc;
}

export function localBootstrapYaml(sdsAddress: string): string {
  return stringify(localBootstrap(sdsAddress));
}
