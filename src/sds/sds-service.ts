import type * as grpc from '@grpc/grpc-js';
import type { PeerInfo } from '../authz/authorizer.js';
import { DeltaStream } from './delta-stream.js';
import { fetchSecrets } from './fetch-secrets.js';
import type { DeltaDiscoveryRequest, DiscoveryRequest } from './messages.js';
import { sdsPackageDefinition } from './protos.js';
import { SotwStream } from './sotw-stream.js';
import type { StreamCall } from './stream-call.js';
import type { StreamDeps } from './stream-driver.js';

export const SDS_SERVICE = 'envoy.service.secret.v3.SecretDiscoveryService';
export const ADS_SERVICE = 'envoy.service.discovery.v3.AggregatedDiscoveryService';

/** A bidirectional streaming RPC: the transport decodes requests, the driver does the rest. */
export interface StreamingMethod<Req> {
  readonly kind: 'streaming';
  decode(bytes: Buffer): Req;
  serve(call: StreamCall<Req>, peer: PeerInfo): void;
}

/** A unary RPC answering with pre-encoded bytes; failures are FetchError (a gRPC status). */
export interface UnaryMethod<Req> {
  readonly kind: 'unary';
  decode(bytes: Buffer): Req;
  serve(req: Req, peer: PeerInfo): Promise<Buffer>;
}

export type SdsMethod = StreamingMethod<DiscoveryRequest> | StreamingMethod<DeltaDiscoveryRequest> | UnaryMethod<DiscoveryRequest>;

/** The request decoder @grpc/proto-loader built for a method (keepCase, defaults). */
// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the caller names the message type
function decoder<Req>(service: string, method: string): (bytes: Buffer) => Req {
  const def = sdsPackageDefinition()[service] as grpc.ServiceDefinition;
  const m = def[method];
  if (!m) throw new Error(`${service}/${method} is not in the loaded protos`);
  return m.requestDeserialize as (bytes: Buffer) => Req;
}

/**
 * The RPCs we serve, by HTTP/2 path (`/package.Service/Method`), independent of the
 * transport that carries them: SDS, and ADS for the Secret type only.
 */
export function sdsMethods(deps: StreamDeps): Map<string, SdsMethod> {
  const sotw = (service: string, rpc: string, protocol: 'sotw' | 'ads'): StreamingMethod<DiscoveryRequest> => ({
    kind: 'streaming',
    decode: decoder(service, rpc),
    serve: (call, peer) => new SotwStream(call, deps, rpc, protocol, peer).start(),
  });
  const delta = (service: string, rpc: string, protocol: 'delta' | 'ads-delta'): StreamingMethod<DeltaDiscoveryRequest> => ({
    kind: 'streaming',
    decode: decoder(service, rpc),
    serve: (call, peer) => new DeltaStream(call, deps, rpc, protocol, peer).start(),
  });
  const fetch: UnaryMethod<DiscoveryRequest> = {
    kind: 'unary',
    decode: decoder(SDS_SERVICE, 'FetchSecrets'),
    serve: (req, peer) => fetchSecrets(req, peer, deps),
  };
  return new Map<string, SdsMethod>([
    [`/${SDS_SERVICE}/StreamSecrets`, sotw(SDS_SERVICE, 'StreamSecrets', 'sotw')],
    [`/${SDS_SERVICE}/DeltaSecrets`, delta(SDS_SERVICE, 'DeltaSecrets', 'delta')],
    [`/${SDS_SERVICE}/FetchSecrets`, fetch],
    [`/${ADS_SERVICE}/StreamAggregatedResources`, sotw(ADS_SERVICE, 'StreamAggregatedResources', 'ads')],
    [`/${ADS_SERVICE}/DeltaAggregatedResources`, delta(ADS_SERVICE, 'DeltaAggregatedResources', 'ads-delta')],
  ]);
}
