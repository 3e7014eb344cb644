import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { parseServerAddress, type ServerAddress } from './server-address.js';

/** envoy-config/ at the package root (this file runs from dist/src/envoy/). */
export const ENVOY_CONFIG_DIR = fileURLToPath(new URL('../../../envoy-config/', import.meta.url));

/**
 * The Envoy bootstrap for the local default: envoy-config/gateway-tcp.yaml (the file
 * the tests validate against upstream protos) with the SDS cluster pointed at the
 * server: a `pipe` for a Unix socket, a STATIC address for an IP, and STRICT_DNS for a
 * host name (Envoy refuses a name in a STATIC cluster).
 */
export function localBootstrap(server: string | ServerAddress): Record<string, unknown> {
  const address = typeof server === 'string' ? parseServerAddress(server) : server;
  const doc = parse(readFileSync(ENVOY_CONFIG_DIR + 'gateway-tcp.yaml', 'utf8')) as Record<string, unknown>;
  const clusters = (doc['static_resources'] as { clusters: Array<Record<string, unknown>> }).clusters;
  const sds = clusters.find((c) => c['name'] === 'sds-server');
  if (!sds) throw new Error('envoy-config/gateway-tcp.yaml has no sds-server cluster');
  const endpoint =
    address.kind === 'unix' ? { pipe: { path: address.path } } : { socket_address: { address: address.host, port_value: address.port } };
  sds['type'] = address.kind === 'tcp' && !address.ip ? 'STRICT_DNS' : 'STATIC';
  sds['load_assignment'] = {
    cluster_name: 'sds-server',
    endpoints: [{ lb_endpoints: [{ endpoint: { address: endpoint } }] }],
  };
  return doc;
}

export function localBootstrapYaml(server: string | ServerAddress): string {
  return stringify(localBootstrap(server));
}
