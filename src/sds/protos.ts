import { fileURLToPath } from 'node:url';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';

/** proto/ at the package root (this file runs from dist/src/sds/). */
export const PROTO_DIR = fileURLToPath(new URL('../../../proto/', import.meta.url));

const FILES = [
  'envoy/service/secret/v3/sds.proto',
  'envoy/service/discovery/v3/ads.proto',
  'envoy/extensions/transport_sockets/tls/v3/secret.proto',
];

/** Options for decoding requests into plain objects the handlers read. */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  bytes: Buffer,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_DIR],
};

let packageDefinition: protoLoader.PackageDefinition | undefined;

export function sdsPackageDefinition(): protoLoader.PackageDefinition {
  packageDefinition ??= protoLoader.loadSync(FILES, LOADER_OPTIONS);
  return packageDefinition;
}

let root: protobuf.Root | undefined;

/** A protobufjs root over the same files, for encoding responses ahead of time. */
export function sdsRoot(): protobuf.Root {
  if (!root) {
    const r = new protobuf.Root();
    r.resolvePath = (_origin, target) => {
      if (target.startsWith('google/protobuf/')) return target; // protobufjs has these built in
      return PROTO_DIR + target;
    };
    r.loadSync(FILES, { keepCase: true });
    r.resolveAll();
    root = r;
  }
  return root;
}

export function sdsType(name: string): protobuf.Type {
  return sdsRoot().lookupType(name);
}
