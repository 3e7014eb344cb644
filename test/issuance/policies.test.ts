// The pure parts of the engine, as tables keyed by sentences with a fake clock: the
// trigger and readiness policies, renewal time with jitter, backoff, solver selection
// and ClusterIssuer restrictions. Properties (fast-check) for the arithmetic.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { createCertificate, encodePrivateKeyPem, generatePrivateKey } from '../../src/pki/index.js';
import { backoffDelayMs, nextAttemptAllowedAt } from '../../src/issuance/backoff.js';
import { emptyStatus } from '../../src/issuance/certificate-status.js';
import { isLoopback } from '../../src/issuance/control-routes.js';
import { selectSolver } from '../../src/issuance/acme/solver-selection.js';
import { CertificateIsOutsideIssuerRestrictions, dnsNameMatches } from '../../src/issuance/issuer-restrictions.js';
import { parseIssuanceConfig } from '../../src/issuance/issuance-config.js';
import { evaluate, READINESS_POLICIES, TRIGGER_POLICIES, type PolicyInput } from '../../src/issuance/policies.js';
import { renewalTime, renewBeforeMs } from '../../src/issuance/renewal-time.js';
import type { AcmeSolver, CertificateResource } from '../../src/issuance/resources.js';
import { ANNOTATIONS, requestHash, secretFacts, type PersistedSecret } from '../../src/issuance/secret-facts.js';
import { V } from './engine-support.js';

const DAY = 86_400_000;
const T0 = new Date('2030-01-01T00:00:00Z');

function certificate(spec: Record<string, unknown> = {}, namespace = 'default'): CertificateResource {
  const cfg = parseIssuanceConfig(
    {
      resources: [
        { apiVersion: V, kind: 'Issuer', metadata: { name: 'ca', namespace }, spec: { selfSigned: {} } },
        {
          apiVersion: V,
          kind: 'Certificate',
          metadata: { name: 'web', namespace },
          spec: {
            secretName: 'web',
            dnsNames: ['web.example.com'],
            subject: { organizations: ['Example'] },
            issuerRef: { name: 'ca' },
            privateKey: { algorithm: 'ECDSA' },
            ...spec,
          },
        },
      ],
    },
    { baseDir: '.' },
  );
  return cfg.certificates[0]!;
}

/** A Secret as the engine would have written it for `cert`, valid [T0, T0 + 90 days). */
async function issuedSecret(
  cert: CertificateResource,
  over: { dnsNames?: string[]; algorithm?: 'ECDSA' | 'RSA'; keyPem?: string; annotations?: Record<string, string>; notAfter?: Date } = {},
): Promise<PersistedSecret> {
  const key = await generatePrivateKey({ algorithm: over.algorithm ?? 'ECDSA' });
  const c = await createCertificate({
    issuer: 'self',
    privateKey: key,
    subject: { commonName: 'web' },
    dnsNames: over.dnsNames ?? cert.spec.dnsNames,
    notBefore: T0,
    notAfter: over.notAfter ?? new Date(T0.getTime() + 90 * DAY),
  });
  return {
    data: { 'tls.crt': c.pem, 'tls.key': over.keyPem ?? encodePrivateKeyPem(key, cert.spec.privateKey.encoding) },
    annotations: over.annotations ?? {
      [ANNOTATIONS.issuerName]: cert.spec.issuerRef.name,
      [ANNOTATIONS.issuerKind]: cert.spec.issuerRef.kind,
      [ANNOTATIONS.requestHash]: requestHash(cert.spec),
    },
  };
}

function input(cert: CertificateResource, secret: PersistedSecret | undefined, now: Date, status = emptyStatus()): PolicyInput {
  return { certificate: cert, secret: secret && secretFacts(secret), status, now, jitter: 0 };
}

describe('trigger and readiness policies', () => {
  const at = (days: number) => new Date(T0.getTime() + days * DAY);
  const cases: Array<{ sentence: string; build: () => Promise<PolicyInput>; trigger: string | undefined; ready: string | undefined }> = [
    {
      sentence: 'SecretDoesNotExist: no Secret yet',
      build: async () => input(certificate(), undefined, at(1)),
      trigger: 'DoesNotExist',
      ready: 'DoesNotExist',
    },
    {
      sentence: 'SecretIsMissingData: a Secret without tls.key',
      build: async () => {
        const c = certificate();
        const s = await issuedSecret(c);
        delete s.data['tls.key'];
        return input(c, s, at(1));
      },
      trigger: 'MissingData',
      ready: 'MissingData',
    },
    {
      sentence: 'SecretContainsInvalidData: tls.crt is not PEM',
      build: async () => input(certificate(), { data: { 'tls.crt': 'garbage', 'tls.key': 'garbage' }, annotations: {} }, at(1)),
      trigger: 'InvalidValue',
      ready: 'InvalidValue',
    },
    {
      sentence: 'SecretPublicKeysDiffer: the key does not belong to the certificate',
      build: async () => {
        const c = certificate();
        const other = encodePrivateKeyPem(await generatePrivateKey({ algorithm: 'ECDSA' }), 'PKCS1');
        return input(c, await issuedSecret(c, { keyPem: other }), at(1));
      },
      trigger: 'InvalidKeyPair',
      ready: 'InvalidKeyPair',
    },
    {
      sentence: 'SpecChanged (key): the spec asks for RSA, the key is ECDSA',
      build: async () => input(certificate({ privateKey: { algorithm: 'RSA' } }), await issuedSecret(certificate()), at(1)),
      trigger: 'SecretMismatch',
      ready: 'SecretMismatch',
    },
    {
      sentence: 'IssuerChanged: the Secret was issued by another issuer',
      build: async () => {
        const c = certificate();
        return input(
          c,
          await issuedSecret(c, {
            annotations: { [ANNOTATIONS.issuerName]: 'letsencrypt-staging', [ANNOTATIONS.issuerKind]: 'ClusterIssuer' },
          }),
          at(1),
        );
      },
      trigger: 'IncorrectIssuer',
      ready: 'IncorrectIssuer',
    },
    {
      sentence: 'SpecChanged (names): a DNS name was added',
      build: async () => {
        const c = certificate({ dnsNames: ['web.example.com', 'www.example.com'] });
        return input(c, await issuedSecret(c, { dnsNames: ['web.example.com'] }), at(1));
      },
      trigger: 'SecretMismatch',
      ready: 'SecretMismatch',
    },
    {
      sentence: 'SpecChanged (request): usages changed since issuance',
      build: async () => {
        const issuedFor = certificate();
        return input(certificate({ usages: ['server auth'] }), await issuedSecret(issuedFor), at(1));
      },
      trigger: 'RequestChanged',
      ready: 'RequestChanged',
    },
    {
      sentence: 'ForcedRenewal: `envoy-sds renew` left a trigger',
      build: async () => {
        const c = certificate();
        return input(c, await issuedSecret(c), at(1), { conditions: [], renewalRequestedAt: at(1).toISOString() });
      },
      trigger: 'ManuallyTriggered',
      ready: undefined,
    },
    {
      sentence: 'CurrentCertificateNearingExpiry: one third of the lifetime left',
      build: async () => {
        const c = certificate();
        return input(c, await issuedSecret(c), at(61));
      },
      trigger: 'Renewing',
      ready: undefined,
    },
    {
      sentence: 'CurrentCertificateHasExpired: past notAfter',
      build: async () => {
        const c = certificate();
        return input(c, await issuedSecret(c), at(91));
      },
      trigger: 'Expired',
      ready: 'Expired',
    },
    {
      sentence: 'nothing to do: a matching certificate before its renewal time',
      build: async () => {
        const c = certificate();
        return input(c, await issuedSecret(c), at(59));
      },
      trigger: undefined,
      ready: undefined,
    },
    {
      sentence: 'renewBefore moves the renewal: 10 days before expiry, not at one third',
      build: async () => {
        const c = certificate({ renewBefore: '240h' });
        return input(c, await issuedSecret(c), at(79));
      },
      trigger: undefined,
      ready: undefined,
    },
    {
      sentence: 'a Secret without annotations (put there by hand) is not re-issued for its issuer',
      build: async () => {
        const c = certificate();
        return input(c, await issuedSecret(c, { annotations: {} }), at(1));
      },
      trigger: undefined,
      ready: undefined,
    },
  ];
  for (const c of cases) {
    test(c.sentence, async () => {
      const i = await c.build();
      assert.equal(evaluate(TRIGGER_POLICIES, i)?.reason, c.trigger, evaluate(TRIGGER_POLICIES, i)?.message);
      assert.equal(evaluate(READINESS_POLICIES, i)?.reason, c.ready);
    });
  }
});

describe('renewal time and backoff', () => {
  test("cert-manager's rule: renewBefore, a percentage, or one third; a renewBefore as long as the lifetime falls back to one third", () => {
    assert.equal(renewBeforeMs(90 * DAY, undefined), 30 * DAY);
    assert.equal(renewBeforeMs(90 * DAY, { ms: 15 * DAY }), 15 * DAY);
    assert.equal(renewBeforeMs(90 * DAY, { percentage: 25 }), 22.5 * DAY);
    assert.equal(renewBeforeMs(10 * DAY, { ms: 15 * DAY }), (10 * DAY) / 3, 'an ACME CA may issue shorter than asked');
  });

  test('jitter only brings renewal earlier, by at most the jitter fraction of renewBefore, and is stable per certificate', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 400 }), fc.double({ min: 0, max: 0.5, noNaN: true }), fc.string(), (days, jitter, seed) => {
        const notBefore = T0;
        const notAfter = new Date(T0.getTime() + days * DAY);
        const before = renewBeforeMs(days * DAY, undefined);
        const t = renewalTime({ notBefore, notAfter, renewBefore: undefined, jitter, seed }).getTime();
        const latest = notAfter.getTime() - before;
        assert.ok(t <= latest, 'never later than renewBefore');
        assert.ok(t >= latest - before * jitter - 1, 'never earlier than the jitter allows');
        assert.equal(renewalTime({ notBefore, notAfter, renewBefore: undefined, jitter, seed }).getTime(), t, 'deterministic');
      }),
    );
  });

  test('certificates issued together spread their renewals', () => {
    const times = new Set(
      Array.from({ length: 50 }, (_, i) =>
        renewalTime({
          notBefore: T0,
          notAfter: new Date(T0.getTime() + 90 * DAY),
          renewBefore: undefined,
          jitter: 0.1,
          seed: `default/cert-${i}`,
        }).getTime(),
      ),
    );
    assert.ok(times.size >= 45, `only ${times.size} distinct renewal times for 50 certificates`);
  });

  test('backoff doubles from the initial delay and stops at the cap', () => {
    const s = { backoffInitialMs: 5 * 60_000, backoffMaxMs: 60 * 60_000 };
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5, 6, 50].map((n) => backoffDelayMs(n, s) / 60_000),
      [0, 5, 10, 20, 40, 60, 60, 60],
    );
    assert.equal(nextAttemptAllowedAt({}, s), undefined);
    assert.equal(
      nextAttemptAllowedAt({ failedIssuanceAttempts: 2, lastFailureTime: T0.toISOString() }, s)?.getTime(),
      T0.getTime() + 10 * 60_000,
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10_000 }),
        fc.integer({ min: 1, max: 1_000_000 }),
        fc.integer({ min: 0, max: 1_000_000 }),
        (n, initial, extra) => {
          const settings = { backoffInitialMs: initial, backoffMaxMs: initial + extra };
          const d = backoffDelayMs(n, settings);
          assert.ok(d >= initial && d <= settings.backoffMaxMs && backoffDelayMs(n + 1, settings) >= d);
        },
      ),
    );
  });
});

describe('ACME solver selection (cert-manager rules)', () => {
  const http = (selector?: Partial<{ dnsNames: string[]; dnsZones: string[]; matchLabels: Record<string, string> }>): AcmeSolver => ({
    type: 'http01',
    selector: selector && { dnsNames: [], dnsZones: [], matchLabels: {}, ...selector },
  });
  const dns = (selector?: Partial<{ dnsNames: string[]; dnsZones: string[]; matchLabels: Record<string, string> }>): AcmeSolver => ({
    type: 'dns01',
    selector: selector && { dnsNames: [], dnsZones: [], matchLabels: {}, ...selector },
    rfc2136: { nameserver: { host: '127.0.0.1', port: 53 }, tsigKeyName: 'k', tsigAlgorithm: 'hmac-sha256', tsigSecret: { file: '/x' } },
    cnameStrategy: 'None',
  });
  const fallback = http();
  const zone = dns({ dnsZones: ['example.com'] });
  const subZone = dns({ dnsZones: ['team.example.com'] });
  const exact = http({ dnsNames: ['www.team.example.com'] });
  const labelled = http({ matchLabels: { tier: 'edge' } });
  const solvers = [fallback, zone, subZone, exact, labelled];
  const table: Array<[string, string, Record<string, string>, AcmeSolver | undefined]> = [
    ['an exact dnsNames match beats every zone', 'www.team.example.com', {}, exact],
    ['the longest matching zone wins', 'api.team.example.com', {}, subZone],
    ['a zone matches its apex too', 'example.com', {}, zone],
    ['a wildcard is matched by zone without its first label', '*.team.example.com', {}, subZone],
    ['labels beat a solver without selector', 'other.org', { tier: 'edge' }, labelled],
    ['no selector matches anything else', 'other.org', {}, fallback],
  ];
  for (const [sentence, name, labels, want] of table) {
    test(sentence, () => assert.equal(selectSolver(solvers, name, labels), want));
  }
  test('nothing is selected when every selector names other domains', () =>
    assert.equal(selectSolver([zone, exact], 'other.org', {}), undefined));
});

describe('ClusterIssuer restrictions', () => {
  const issuer = {
    kind: 'ClusterIssuer' as const,
    name: 'shared',
    namespace: undefined,
    secretNamespace: 'cert-manager',
    spec: { type: 'selfSigned' as const },
    restrictions: { namespaces: ['team-a', 'shared-*'], dnsNames: ['*.team-a.example.com', 'team-a.example.com'] },
  };
  const table: Array<[string, CertificateResource, string | undefined]> = [
    [
      'a Certificate in an allowed namespace for allowed names passes',
      certificate({ dnsNames: ['api.team-a.example.com', 'team-a.example.com'] }, 'team-a'),
      undefined,
    ],
    ['a namespace prefix pattern allows shared-web', certificate({ dnsNames: ['x.team-a.example.com'] }, 'shared-web'), undefined],
    [
      'a foreign namespace is denied',
      certificate({ dnsNames: ['api.team-a.example.com'] }, 'team-b'),
      'may not be used from namespace "team-b"',
    ],
    [
      'a foreign DNS name is denied',
      certificate({ dnsNames: ['api.team-b.example.com'] }, 'team-a'),
      'may not issue for "api.team-b.example.com"',
    ],
    [
      'a commonName outside the patterns is denied',
      certificate({ commonName: 'evil.example.com', dnsNames: ['api.team-a.example.com'] }, 'team-a'),
      'may not issue for "evil.example.com"',
    ],
    [
      'a CA certificate is denied: it could sign any name',
      certificate({ isCA: true, commonName: 'team-a.example.com', dnsNames: ['team-a.example.com'] }, 'team-a'),
      'may not issue CA certificates',
    ],
    [
      'IP SANs are denied when names are restricted',
      certificate({ dnsNames: ['a.team-a.example.com'], ipAddresses: ['10.0.0.1'] }, 'team-a'),
      'IP, URI or email',
    ],
  ];
  for (const [sentence, cert, message] of table) {
    test(sentence, () => {
      const r = CertificateIsOutsideIssuerRestrictions(cert, issuer);
      if (message === undefined) assert.equal(r, undefined);
      else {
        assert.equal(r?.reason, 'Denied');
        assert.ok(r?.message.includes(message), r?.message);
      }
    });
  }
  test('*.suffix never matches the bare suffix or a look-alike domain', () => {
    assert.equal(dnsNameMatches('*.example.com', 'example.com'), false);
    assert.equal(dnsNameMatches('*.example.com', 'badexample.com'), false);
    assert.equal(dnsNameMatches('*.example.com', 'a.b.EXAMPLE.com'), true);
    assert.equal(dnsNameMatches('*.example.com', '*.example.com'), true);
  });
});

test('issuance controls accept loopback callers only', () => {
  for (const a of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) assert.equal(isLoopback(a), true, a);
  for (const a of ['10.0.0.1', '::ffff:10.0.0.1', '2001:db8::1', undefined]) assert.equal(isLoopback(a), false, String(a));
});
