import * as grpc from '@grpc/grpc-js';
import type { PeerInfo } from '../authz/authorizer.js';
import { clientCertificateFromDer } from '../authz/peer-certificate.js';
import { DeltaStream } from './delta-stream.js';
import { FetchError, fetchSecrets } from './fetch-secrets.js';
import type { DeltaDiscoveryRequest, DiscoveryRequest } from './messages.js';
import { sdsPackageDefinition } from './protos.js';
import { SotwStream } from './sotw-stream.js';
import type { StreamDeps } from './stream-driver.js';

type Listener = PeerInfo['listener'];

/**
 * A response serializer that passes pre-encoded bytes through: responses are assembled
 * from bytes encoded once per secret version (see secret-encoding.ts).
 */
function passThrough(def: grpc.MethodDefinition<unknown, unknown>): grpc.MethodDefinition<unknown, unknown> {
  const original = def.responseSerialize;
  return {
    ...def,
    responseSerialize: (value: unknown) => (Buffer.isBuffer(value) ? value : original(value)),
  };
}

function serviceDefinition(name: string): grpc.ServiceDefinition {
  const def = sdsPackageDefinition()[name] as grpc.ServiceDefinition;
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [method, m] of Object.entries(def)) out[method] = passThrough(m);
  return out as grpc.ServiceDefinition;
}

export const SDS_SERVICE = 'envoy.service.secret.v3.SecretDiscoveryService';
export const ADS_SERVICE = 'envoy.service.discovery.v3.AggregatedDiscoveryService';

/** What the transport knows about a call, for authentication. */
export function peerInfo(
  call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>,
  listener: Listener,
): PeerInfo {
  const peer: PeerInfo = { address: call.getPeer(), listener };
  const auth = call.metadata.get('authorization')[0];
  if (typeof auth === 'string') peer.authorization = auth;
  const cert = call.getAuthContext?.()?.sslPeerCertificate;
  if (cert && Object.keys(cert).length > 0) {
    peer.clientCertificate = clientCertificateFromDer(cert.raw);
  }
  return peer;
}

/** Adds SDS and ADS (Secret type only) to a gRPC server. */
export function addSdsServices(server: grpc.Server, deps: StreamDeps, listener: Listener): void {
  const sotw = (rpc: string, protocol: 'sotw' | 'ads') => (call: grpc.ServerDuplexStream<DiscoveryRequest, Buffer>) =>
    new SotwStream(call, deps, rpc, protocol, peerInfo(call, listener)).start();
  const delta =
    (rpc: string, protocol: 'delta' | 'ads-delta') => (call: grpc.ServerDuplexStream<DeltaDiscoveryRequest, Buffer>) =>
      new DeltaStream(call, deps, rpc, protocol, peerInfo(call, listener)).start();

  server.addService(serviceDefinition(SDS_SERVICE), {
    StreamSecrets: sotw('StreamSecrets', 'sotw'),
    DeltaSecrets: delta('DeltaSecrets', 'delta'),
    FetchSecrets: (
      call: grpc.ServerUnaryCall<DiscoveryRequest, Buffer>,
      callback: grpc.sendUnaryData<Buffer>,
    ) => {
      fetchSecrets(call.request, peerInfo(call, listener), deps).then(
        (bytes) => callback(null, bytes),
        (err: unknown) => {
          if (err instanceof FetchError) callback({ code: err.code, details: err.message });
          else {
            deps.logger.error({ rpc: 'FetchSecrets', err }, 'fetch failed');
            callback({ code: grpc.status.INTERNAL, details: 'internal error' });
          }
        },
      );
    },
  });
  server.addService(serviceDefinition(ADS_SERVICE), {
    StreamAggregatedResources: sotw('StreamAggregatedResources', 'ads'),
    DeltaAggregatedResources: delta('DeltaAggregatedResources', 'ads-delta'),
  });
}
