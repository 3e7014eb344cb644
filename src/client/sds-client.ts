import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { sdsPackageDefinition, sdsType } from '../sds/protos.js';
import { SECRET_TYPE_URL } from '../sds/type-urls.js';

export interface ClientOptions {
  /** `host:port`, or `unix:/path/to.sock`. */
  server: string;
  /** TLS to the server: CA bundle to trust; with cert+key, mTLS. */
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  /** Sent as `authorization: Bearer <token>`. */
  token?: string;
  node?: { id: string; cluster: string };
}

/** A Secret decoded with our protos, as a plain object. */
export interface ReceivedSecret {
  name: string;
  type?: 'tls_certificate' | 'validation_context' | 'session_ticket_keys' | 'generic_secret';
  tls_certificate?: { certificate_chain?: { inline_bytes?: Buffer; inline_string?: string }; private_key?: { inline_bytes?: Buffer; inline_string?: string } };
  validation_context?: { trusted_ca?: { inline_bytes?: Buffer; inline_string?: string } };
}

export interface ReceivedVersion {
  version: string;
  secrets: ReceivedSecret[];
}

/**
 * A StreamSecrets client for people: asks for names as Envoy does, ACKs every response,
 * and hands each version to `onVersion`. Resolves when the stream ends.
 */
export function watchSecrets(
  opts: ClientOptions,
  names: string[],
  onVersion: (v: ReceivedVersion) => boolean | void,
): { done: Promise<void>; cancel: () => void } {
  const pkg = grpc.loadPackageDefinition(sdsPackageDefinition()) as unknown as {
    envoy: { service: { secret: { v3: { SecretDiscoveryService: grpc.ServiceClientConstructor } } } };
  };
  const Client = pkg.envoy.service.secret.v3.SecretDiscoveryService;
  const client = new Client(opts.server, credentials(opts), { 'grpc.max_receive_message_length': -1 });
  const md = new grpc.Metadata();
  if (opts.token) md.set('authorization', `Bearer ${opts.token}`);
  const call = (client as unknown as { StreamSecrets(m: grpc.Metadata): grpc.ClientDuplexStream<unknown, Record<string, unknown>> }).StreamSecrets(md);
  const node = opts.node ?? { id: `envoy-sds-cli-${process.pid}`, cluster: 'envoy-sds-cli' };
  call.write({ node, type_url: SECRET_TYPE_URL, resource_names: names, version_info: '', response_nonce: '' });
  const Secret = sdsType('envoy.extensions.transport_sockets.tls.v3.Secret');
  const done = new Promise<void>((resolve, reject) => {
    call.on('data', (res: Record<string, unknown>) => {
      const resources = (res['resources'] as Array<{ type_url: string; value: Buffer }>) ?? [];
      const secrets = resources.map(
        (a) => Secret.toObject(Secret.decode(a.value), { bytes: Buffer, oneofs: true }) as ReceivedSecret,
      );
      call.write({ type_url: SECRET_TYPE_URL, resource_names: names, version_info: res['version_info'], response_nonce: res['nonce'] });
      if (onVersion({ version: res['version_info'] as string, secrets }) === false) {
        call.cancel();
      }
    });
    call.on('error', (err: grpc.ServiceError) => {
      client.close();
      if (err.code === grpc.status.CANCELLED) resolve();
      else reject(err);
    });
    call.on('end', () => {
      client.close();
      resolve();
    });
  });
  return { done, cancel: () => call.cancel() };
}

function credentials(opts: ClientOptions): grpc.ChannelCredentials {
  if (!opts.caFile) return grpc.credentials.createInsecure();
  return grpc.credentials.createSsl(
    readFileSync(opts.caFile),
    opts.keyFile ? readFileSync(opts.keyFile) : null,
    opts.certFile ? readFileSync(opts.certFile) : null,
  );
}
