// The upstream Envoy API, loaded once, as an independent reference for tests.
//
// The protos come from the npm package `@grpc/grpc-js-xds` (devDependency), which ships
// Envoy's API under deps/{envoy-api,xds,googleapis,protoc-gen-validate}. protobufjs's own
// folder is on the include path too, for google/protobuf/descriptor.proto.
//
// Every `envoy/**/v3/*.proto` file is loaded (bootstrap, listeners, clusters, TLS transport
// sockets and Secret, HTTP connection manager, router, upstream HTTP protocol options,
// discovery and SDS services, gRPC credentials, access loggers, ...), plus the xds/udpa
// TypedStruct, so any `@type` an Envoy config can name resolves. The few files whose
// third-party imports the package does not ship (OpenCensus, OpenTelemetry, Prometheus)
// are skipped.
//
// Contract:
// - The Root is built with `keepCase: true`: field names are the proto names
//   (`resource_names`, `version_info`), as in Envoy's own JSON/YAML and in
//   `@grpc/proto-loader` with `keepCase: true`.
// - The first call takes about half a second (more on a busy machine); later calls return
//   the same Root.
// - Treat the Root as read-only: it is shared by every test in the process.

import { createRequire } from 'node:module';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative } from 'node:path';
import protobuf from 'protobufjs';
import type { Root, Service, Type } from 'protobufjs';

const require = createRequire(import.meta.url);

let includeDirsCache: readonly string[] | undefined;
let rootCache: Root | undefined;

/**
 * The folders to put on a proto include path to compile against the upstream Envoy API:
 * the four deps folders of `@grpc/grpc-js-xds`, then protobufjs's own folder.
 * Usable as `includeDirs` for `@grpc/proto-loader`.
 */
export function upstreamIncludeDirs(): readonly string[] {
  if (includeDirsCache === undefined) {
    const xdsPackage = dirname(require.resolve('@grpc/grpc-js-xds/package.json'));
    const protobufjsPackage = dirname(require.resolve('protobufjs/package.json'));
    includeDirsCache = Object.freeze([
      join(xdsPackage, 'deps', 'envoy-api'),
      join(xdsPackage, 'deps', 'xds'),
      join(xdsPackage, 'deps', 'googleapis'),
      join(xdsPackage, 'deps', 'protoc-gen-validate'),
      protobufjsPackage,
    ]);
  }
  return includeDirsCache;
}

/** The cached protobufjs Root holding the upstream Envoy v3 API (see the file comment). */
export function upstreamRoot(): Root {
  if (rootCache === undefined) rootCache = loadRoot();
  return rootCache;
}

/**
 * A message type of the upstream API by its full name, with or without a leading dot or a
 * `type.googleapis.com/` prefix, e.g. `envoy.config.bootstrap.v3.Bootstrap`.
 * Throws when the name is unknown or is not a message.
 */
export function lookupUpstreamType(name: string): Type {
  const full = name.slice(name.lastIndexOf('/') + 1).replace(/^\./, '');
  const found = upstreamRoot().lookup(full);
  if (!(found instanceof protobuf.Type)) {
    throw new Error(`upstream Envoy protos: no message type named ${full}`);
  }
  return found;
}

/** A service of the upstream API by its full name, e.g. `envoy.service.secret.v3.SecretDiscoveryService`. */
export function lookupUpstreamService(name: string): Service {
  const found = upstreamRoot().lookup(name.replace(/^\./, ''));
  if (!(found instanceof protobuf.Service)) {
    throw new Error(`upstream Envoy protos: no service named ${name}`);
  }
  return found;
}

function loadRoot(): Root {
  const dirs = upstreamIncludeDirs();
  const envoyApi = dirs[0];
  if (envoyApi === undefined) throw new Error('upstream Envoy protos: no include folder');
  const find = (target: string): string | null => {
    if (isAbsolute(target)) return existsSync(target) ? target : null;
    for (const dir of dirs) {
      const candidate = join(dir, target);
      if (existsSync(candidate)) return candidate;
    }
    return null;
  };
  const files = listProtos(join(envoyApi, 'envoy'))
    .map((file) => relative(envoyApi, file).split('\\').join('/'))
    .filter((file) => /\/v3(alpha)?\//.test(file))
    .concat(EXTRA_FILES)
    .filter((file) => importsResolve(file, find, new Map()))
    .sort();

  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => find(target);
  // alternateCommentMode keeps `//` comments, which carry the `[#not-implemented-hide:]` marks.
  root.loadSync(files, { keepCase: true, alternateCommentMode: true });
  root.resolveAll();
  return root;
}

// Messages Envoy accepts in typed_config besides its own: TypedStruct (type_url + Struct).
const EXTRA_FILES = ['xds/type/v3/typed_struct.proto', 'udpa/type/v1/typed_struct.proto'];

function listProtos(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listProtos(p));
    else if (entry.name.endsWith('.proto')) out.push(p);
  }
  return out;
}

// True when the file and everything it imports, transitively, is on the include path.
function importsResolve(file: string, find: (target: string) => string | null, seen: Map<string, boolean>): boolean {
  const known = seen.get(file);
  if (known !== undefined) return known;
  // protobufjs bundles the well-known types (google/protobuf/any.proto, ...) itself.
  if (file.startsWith('google/protobuf/')) return true;
  seen.set(file, true); // cycles: assume fine until proven otherwise
  const path = find(file);
  let ok = path !== null;
  if (path !== null) {
    const text = readFileSync(path, 'utf8');
    for (const m of text.matchAll(/^\s*import\s+(?:public\s+|weak\s+)?"([^"]+)"\s*;/gm)) {
      const target = m[1];
      if (target !== undefined && !importsResolve(target, find, seen)) {
        ok = false;
        break;
      }
    }
  }
  seen.set(file, ok);
  return ok;
}
