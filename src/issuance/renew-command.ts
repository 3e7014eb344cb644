// `envoy-sds renew <certificate>...`, like `cmctl renew`: asks the running server to
// re-issue now. It writes the trigger through the server's HTTP port (loopback only);
// the engine persists it in the certificate's status before acting on it.

import { request } from 'node:http';
import { parseArgs } from 'node:util';
import { DEFAULT_HTTP_ADDRESS } from '../config/server-config.js';
import { INTENT_HEADER } from '../observability/state-change-request.js';
import { renewInKubernetes } from './renew-in-kubernetes.js';

export const RENEW_USAGE = `  envoy-sds renew NAME... [--namespace NS] [--http ADDR]
                                       re-issue these certificates now (NAME or
                                       namespace/name; the server's HTTP address,
                                       default ${DEFAULT_HTTP_ADDRESS})
  envoy-sds renew NAME... --kubernetes [--namespace NS] [--kubeconfig FILE] [--context C]
                                       Certificates as custom resources: set their
                                       Issuing condition (ManuallyTriggered) as
                                       cmctl renew does; the leading replica re-issues
`;

export async function renewCommand(
  args: string[],
  out: NodeJS.WritableStream = process.stdout,
  err: NodeJS.WritableStream = process.stderr,
): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      namespace: { type: 'string', short: 'n' },
      http: { type: 'string', default: DEFAULT_HTTP_ADDRESS },
      kubernetes: { type: 'boolean', default: false },
      kubeconfig: { type: 'string' },
      context: { type: 'string' },
    },
  });
  if (positionals.length === 0) {
    err.write(`envoy-sds renew: name at least one certificate\n\n${RENEW_USAGE}`);
    return 2;
  }
  if (values.kubernetes) {
    const { namespace, kubeconfig, context } = values;
    return renewInKubernetes(
      positionals,
      { ...(namespace ? { namespace } : {}), ...(kubeconfig ? { kubeconfig } : {}), ...(context ? { context } : {}) },
      out,
      err,
    );
  }
  let code = 0;
  for (const name of positionals) {
    const ref = name.includes('/') || !values.namespace ? name : `${values.namespace}/${name}`;
    try {
      const res = await post(values.http, `/issuance/renew/${ref.split('/').map(encodeURIComponent).join('/')}`);
      const body = JSON.parse(res.body || '{}') as { certificate?: string; renewalRequestedAt?: string; error?: string };
      if (res.status === 202) out.write(`renewal of ${body.certificate} requested at ${body.renewalRequestedAt}\n`);
      else {
        err.write(`envoy-sds renew ${ref}: ${body.error ?? `HTTP ${res.status}`}\n`);
        code = 1;
      }
    } catch (e) {
      err.write(`envoy-sds renew ${ref}: cannot reach the server at ${values.http} (${(e as Error).message})\n`);
      code = 1;
    }
  }
  return code;
}

function post(address: string, path: string): Promise<{ status: number; body: string }> {
  const i = address.lastIndexOf(':');
  const host = address.slice(0, i).replace(/^\[|\]$/g, '');
  // What the endpoint requires of a state-changing request: JSON and the intent header.
  const body = JSON.stringify({ requestedBy: 'envoy-sds renew' });
  const headers = { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), [INTENT_HEADER]: 'renew' };
  return new Promise((resolve, reject) => {
    const req = request({ host, port: Number(address.slice(i + 1)), path, method: 'POST', headers, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(body);
  });
}
