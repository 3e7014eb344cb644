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
  tls_certificate?: {
    certificate_chain?: { inline_bytes?: Buffer; inline_string?: string };
    private_key?: { inline_bytes?: Buffer; inline_string?: string };
  };
  validation_context?: { trusted_ca?: { inline_bytes?: Buffer; inline_string?: string } };
}

/** One version of one secret, as one stream received it. */
export interface ReceivedVersion {
  name: string;
  /** The response's version_info: with one stream per name, the secret's own version. */
  version: string;
  secret: ReceivedSecret | undefined;
}

/** How one name's stream ended. */
export interface StreamEnd {
  name: string;
  /** OK when the server ended the stream (a drain), CANCELLED when we did. */
  code: grpc.status;
  details: string;
}

export interface SecretWatch {
  /** Resolves when every stream has ended, with how each ended. */
  done: Promise<StreamEnd[]>;
  cancel(): void;
}

type StreamSecretsClient = grpc.Client & {
  StreamSecrets(m: grpc.Metadata): grpc.ClientDuplexStream<unknown, Record<string, unknown>>;
};

/**
 * A StreamSecrets client for people that behaves as Envoy does: one stream per name on
 * one connection, the node on the first request, an ACK for every response. Each
 * version goes to `onVersion`; returning false ends that name's stream.
 */
export function watchSecrets(opts: ClientOptions, names: string[], onVersion: (v: ReceivedVersion) => unknown): SecretWatch {
  const pkg = grpc.loadPackageDefinition(sdsPackageDefinition()) as unknown as {
    envoy: { service: { secret: { v3: { SecretDiscoveryService: grpc.ServiceClientConstructor } } } };
  };
  const Client = pkg.envoy.service.secret.v3.SecretDiscoveryService;
  const client = new Client(opts.server, credentials(opts), { 'grpc.max_receive_message_length': -1 }) as unknown as StreamSecretsClient;
  const md = new grpc.Metadata();
  if (opts.token) md.set('authorization', `Bearer ${opts.token}`);
  const node = opts.node ?? { id: `envoy-sds-cli-${process.pid}`, cluster: 'envoy-sds-cli' };
  const Secret = sdsType('envoy.extensions.transport_sockets.tls.v3.Secret');
  const calls: Array<grpc.ClientDuplexStream<unknown, Record<string, unknown>>> = [];

  const streamOf = (name: string): Promise<StreamEnd> =>
    new Promise((resolve) => {
      const call = client.StreamSecrets(md);
      calls.push(call);
      let ended = false;
      const end = (code: grpc.status, details: string) => {
        if (ended) return;
        ended = true;
        resolve({ name, code, details });
      };
      call.write({ node, type_url: SECRET_TYPE_URL, resource_names: [name], version_info: '', response_nonce: '' });
      call.on('data', (res: Record<string, unknown>) => {
        const resources = (res['resources'] as Array<{ type_url: string; value: Buffer }>) ?? [];
        const secrets = resources.map((a) => Secret.toObject(Secret.decode(a.value), { bytes: Buffer, oneofs: true }) as ReceivedSecret);
        call.write({ type_url: SECRET_TYPE_URL, resource_names: [name], version_info: res['version_info'], response_nonce: res['nonce'] });
        if (
          onVersion({ name, version: res['version_info'] as string, secret: secrets.find((s) => s.name === name) ?? secrets[0] }) === false
        ) {
          call.cancel();
        }
      });
      call.on('error', (err: grpc.ServiceError) => end(err.code, err.details || err.message));
      call.on('status', (s: grpc.StatusObject) => end(s.code, s.details));
      call.on('end', () => end(grpc.status.OK, 'the server ended the stream'));
    });

  const done = Promise.all(names.map(streamOf)).finally(() => client.close());
  return { done, cancel: () => calls.forEach((c) => c.cancel()) };
}

function credentials(opts: ClientOptions): grpc.ChannelCredentials {
  if (!opts.caFile) return grpc.credentials.createInsecure();
  return grpc.credentials.createSsl(
    readFileSync(opts.caFile),
    opts.keyFile ? readFileSync(opts.keyFile) : null,
    opts.certFile ? readFileSync(opts.certFile) : null,
  );
}
