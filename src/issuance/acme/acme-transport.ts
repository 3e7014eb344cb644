// How acme-client's requests reach an ACME server. acme-client sends everything through
// one shared axios instance, so per-issuer settings are applied by origin in a request
// interceptor installed once: the CA bundle to trust (`caBundle`/`caBundleFile`, e.g. a
// private ACME CA or Pebble in tests), skipTLSVerify, and a request timeout.
//
// It also turns off acme-client's transport retries for these origins: they wait 5, 10,
// 15, 20 and 25 seconds on a refused connection or a 5xx before failing, time in which
// the certificate's status says nothing. A failure instead reaches the engine at once,
// shows in the status, and is retried on the engine's backoff.

import { Agent, request } from 'node:https';
import { request as plainRequest } from 'node:http';
import * as acme from 'acme-client';

export interface AcmeTransportSettings {
  caBundlePem: string | undefined;
  skipTLSVerify: boolean;
}

const REQUEST_TIMEOUT_MS = 30_000;

interface OriginSettings extends AcmeTransportSettings {
  agent: Agent | undefined;
}

const origins = new Map<string, OriginSettings>();
let installed = false;

/**
 * Registers `directoryUrl`'s origin. Two issuers on one origin share its settings; the
 * last registered with different ones wins.
 */
export function configureAcmeTransport(directoryUrl: string, settings: AcmeTransportSettings): void {
  const origin = new URL(directoryUrl).origin;
  const previous = origins.get(origin);
  // Same settings: keep the agent (requests of other certificates may be using it).
  if (previous && previous.caBundlePem === settings.caBundlePem && previous.skipTLSVerify === settings.skipTLSVerify) return;
  const custom = settings.caBundlePem !== undefined || settings.skipTLSVerify;
  origins.set(origin, {
    ...settings,
    agent: custom
      ? new Agent({
          keepAlive: false,
          ...(settings.caBundlePem !== undefined ? { ca: settings.caBundlePem } : {}),
          rejectUnauthorized: !settings.skipTLSVerify,
        })
      : undefined,
  });
  install();
}

/**
 * acme-client 5.4 reports a request that got no response (refused, reset, timed out) as
 * "Cannot read properties of undefined (reading 'config')": its retry interceptor reads
 * the missing response. Such an error is replaced by what a direct request to the
 * directory says, so the status names the real cause.
 */
export async function explainAcmeError(err: unknown, directoryUrl: string): Promise<Error> {
  const error = err instanceof Error ? err : new Error(String(err));
  if (!(error instanceof TypeError && /reading 'config'/.test(error.message))) return error;
  const settings = origins.get(new URL(directoryUrl).origin);
  const probe = await new Promise<string>((resolve) => {
    const get = directoryUrl.startsWith('https:') ? request : plainRequest;
    const req = get(directoryUrl, { method: 'GET', timeout: 10_000, ...(settings?.agent ? { agent: settings.agent } : {}) }, (res) => {
      res.resume();
      resolve(`it answers HTTP ${res.statusCode ?? '?'} now`);
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (e) => resolve(e.message));
    req.end();
  });
  return new Error(`no response from the ACME server ${new URL(directoryUrl).origin} (${probe})`);
}

function install(): void {
  if (installed) return;
  installed = true;
  acme.axios.interceptors.request.use((config) => {
    const url = config.url;
    if (!url || !URL.canParse(url)) return config;
    const settings = origins.get(new URL(url).origin);
    if (!settings) return config;
    if (settings.agent) config.httpsAgent = settings.agent;
    if (!config.timeout) config.timeout = REQUEST_TIMEOUT_MS;
    // acme-client counts retries in config.retryAttempt against its global maximum;
    // starting at the maximum means the first failure is final.
    const max = (acme.axios.defaults as { acmeSettings?: { retryMaxAttempts?: number } }).acmeSettings?.retryMaxAttempts ?? 5;
    (config as { retryAttempt?: number }).retryAttempt = max;
    return config;
  });
}
