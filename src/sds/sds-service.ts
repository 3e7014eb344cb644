import type { PeerInfo } from '../authz/authorizer.js';
import type { CallEnd } from './call-end.js';
import { DeltaSession } from './delta-session.js';
import { fetchSecrets } from './fetch-secrets.js';
import type { DeltaDiscoveryRequest, DiscoveryRequest } from './messages.js';
import { decodeDeltaDiscoveryRequest, decodeDiscoveryRequest } from './request-decoding.js';
import { SecretFanout } from './secret-fanout.js';
import type { Session } from './session.js';
import { SotwSession } from './sotw-session.js';
import type { StreamCall } from './stream-call.js';
import { StreamDriver, type StreamDeps, type StreamMethod } from './stream-driver.js';
import type { StreamProtocol, StreamStatus } from './stream-status.js';
import type { NameBudget } from './identity-names.js';

export const SDS_SERVICE = 'envoy.service.secret.v3.SecretDiscoveryService';
export const ADS_SERVICE = 'envoy.service.discovery.v3.AggregatedDiscoveryService';

/** A bidirectional streaming RPC: the transport decodes requests, the driver does the rest. */
export interface StreamingMethod<Req> {
  readonly kind: 'streaming';
  /** A plain function (no `this`): calls hold it as it is, not a closure each. */
  readonly decode: (bytes: Buffer) => Req;
  serve(call: StreamCall<Req>, peer: PeerInfo): void;
}

/** A unary RPC answering with pre-encoded bytes, or the reason it failed (the edge maps it to a code). */
export interface UnaryMethod<Req> {
  readonly kind: 'unary';
  readonly decode: (bytes: Buffer) => Req;
  serve(req: Req, peer: PeerInfo): Promise<Buffer | CallEnd>;
}

export type SdsMethod = StreamingMethod<DiscoveryRequest> | StreamingMethod<DeltaDiscoveryRequest> | UnaryMethod<DiscoveryRequest>;

type SessionClass<Req> = new (
  status: StreamStatus,
  rpc: string,
  limits: StreamDeps['limits'],
  budget: NameBudget,
  now: () => number,
) => Session<Req>;

/**
 * The RPCs we serve, by HTTP/2 path (`/package.Service/Method`), independent of the
 * transport that carries them: SDS, and ADS for the Secret type only. Streams share one
 * store watch per name (SecretFanout) and one method record each.
 */
export function sdsMethods(deps: StreamDeps): Map<string, SdsMethod> {
  const fanout = new SecretFanout(deps.store);
  const now = deps.now ?? Date.now;
  const streaming = <Req>(
    rpc: string,
    protocol: StreamProtocol,
    Kind: SessionClass<Req>,
    decode: (bytes: Buffer) => Req,
  ): StreamingMethod<Req> => {
    const method: StreamMethod<Req> = {
      rpc,
      protocol,
      family: protocol === 'sotw' || protocol === 'ads' ? 'sotw' : 'delta',
      deps,
      fanout,
      createSession: (status, budget) => new Kind(status, rpc, deps.limits, budget, now),
    };
    return { kind: 'streaming', decode, serve: (call, peer) => new StreamDriver(call, method, peer).start() };
  };
  const fetch: UnaryMethod<DiscoveryRequest> = {
    kind: 'unary',
    decode: decodeDiscoveryRequest,
    serve: (req, peer) => fetchSecrets(req, peer, deps),
  };
  return new Map<string, SdsMethod>([
    [`/${SDS_SERVICE}/StreamSecrets`, streaming('StreamSecrets', 'sotw', SotwSession, decodeDiscoveryRequest)],
    [`/${SDS_SERVICE}/DeltaSecrets`, streaming('DeltaSecrets', 'delta', DeltaSession, decodeDeltaDiscoveryRequest)],
    [`/${SDS_SERVICE}/FetchSecrets`, fetch],
    [`/${ADS_SERVICE}/StreamAggregatedResources`, streaming('StreamAggregatedResources', 'ads', SotwSession, decodeDiscoveryRequest)],
    [
      `/${ADS_SERVICE}/DeltaAggregatedResources`,
      streaming('DeltaAggregatedResources', 'ads-delta', DeltaSession, decodeDeltaDiscoveryRequest),
    ],
  ]);
}
