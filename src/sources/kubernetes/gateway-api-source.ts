import { backendTlsPolicyName, gatewaySecretName } from '../../kubernetes/gateway-api-names.js';
import type { SubjectAltNameMatch } from '../../store/secret-material.js';
import { tlsFromSecret, type DesiredSecret, type SourceObject } from './desired-secret.js';
import {
  GATEWAY_API_GROUP,
  GATEWAY_API_VERSION,
  reduceBackendTlsPolicy,
  reduceGateway,
  reduceReferenceGrant,
  type BackendTlsPolicyObject,
  type GatewayObject,
  type ReferenceGrantObject,
} from './gateway-api-objects.js';
import type { GatewayReferences } from './gateway-references.js';
import { CA_SECRET_TYPES } from './kube-objects.js';
import type { SourceContext, SourceExtension } from './kubernetes-source.js';
import { ResourceInformer, type ObjectMeta } from '../../kubernetes/resource-informer.js';

const ABSENT: DesiredSecret = { state: 'absent' };
const POLICY_API_VERSION = `${GATEWAY_API_GROUP}/${GATEWAY_API_VERSION}`;

/**
 * Gateways, ReferenceGrants and BackendTLSPolicies -> names:
 * - `kubernetes-gateway://ns/secret` for every Secret a Gateway listener names in
 *   certificateRefs (the same content as `kubernetes://ns/secret`; who may read it is the
 *   authorizer's business: the caller's Gateway and the ReferenceGrants, gateway-authorizer.ts);
 * - `backendtlspolicy://ns/policy`: its caCertificateRefs (ConfigMaps, Secrets of the
 *   policy's namespace, key `ca.crt`) as one bundle, with `subjectAltNames` (else
 *   `hostname`) as the SANs the backend must present.
 */
export class GatewayApiSource implements SourceExtension {
  private readonly gateways = new Map<string, ResourceInformer<GatewayObject>>();
  private readonly grants = new Map<string, ResourceInformer<ReferenceGrantObject>>();
  private readonly policies = new Map<string, ResourceInformer<BackendTlsPolicyObject>>();
  /** namespace -> policy name -> policy: the policies a ConfigMap or Secret change may touch. */
  private readonly policiesByNamespace = new Map<string, Map<string, BackendTlsPolicyObject>>();

  constructor(
    private readonly ctx: SourceContext,
    private readonly references: GatewayReferences,
  ) {
    for (const ns of ctx.scopes) {
      const prefix = ns
        ? `/apis/${GATEWAY_API_GROUP}/${GATEWAY_API_VERSION}/namespaces/${ns}`
        : `/apis/${GATEWAY_API_GROUP}/${GATEWAY_API_VERSION}`;
      const logger = ctx.logger.child({ scope: ns || 'cluster' });
      const informer = <T extends { meta: ObjectMeta }>(
        resource: string,
        reduce: (raw: Record<string, unknown>) => T,
        onChange: (key: string, obj: T | undefined) => void,
      ): ResourceInformer<T> =>
        new ResourceInformer<T>({
          ...ctx.informerOptions,
          resource,
          path: `${prefix}/${resource}`,
          reduce,
          onChange,
          logger,
          onRestart: (reason) => ctx.onWatchRestart?.(resource, reason),
        });
      this.gateways.set(
        ns,
        informer('gateways', reduceGateway, (key, gw) => this.gatewayChanged(key, gw)),
      );
      this.grants.set(
        ns,
        informer('referencegrants', reduceReferenceGrant, (key, g) => references.setGrant(key, g)),
      );
      this.policies.set(
        ns,
        informer('backendtlspolicies', reduceBackendTlsPolicy, (key, p) => this.policyChanged(key, p)),
      );
    }
  }

  informers(): ReturnType<SourceExtension['informers']> {
    const out: Array<ReturnType<SourceExtension['informers']>[number]> = [];
    for (const [scope, informer] of this.gateways) out.push({ resource: 'gateways', scope, informer });
    for (const [scope, informer] of this.grants) out.push({ resource: 'referencegrants', scope, informer });
    for (const [scope, informer] of this.policies) out.push({ resource: 'backendtlspolicies', scope, informer });
    return out;
  }

  secretChanged(namespace: string, name: string): void {
    this.applyGatewaySecret(namespace, name);
    this.policiesReferring(namespace, 'Secret', name);
  }

  configMapChanged(namespace: string, name: string): void {
    this.policiesReferring(namespace, 'ConfigMap', name);
  }

  private gatewayChanged(key: string, gateway: GatewayObject | undefined): void {
    for (const ref of this.references.setGateway(key, gateway)) {
      const slash = ref.indexOf('/');
      this.applyGatewaySecret(ref.slice(0, slash), ref.slice(slash + 1));
    }
  }

  private applyGatewaySecret(namespace: string, secret: string): void {
    const desired = this.references.isReferenced(namespace, secret) ? tlsFromSecret(this.ctx.lookupSecret(namespace, secret)) : ABSENT;
    this.ctx.apply(gatewaySecretName(namespace, secret), desired);
  }

  private policyChanged(key: string, policy: BackendTlsPolicyObject | undefined): void {
    const slash = key.indexOf('/');
    const [ns, name] = [key.slice(0, slash), key.slice(slash + 1)];
    let inNs = this.policiesByNamespace.get(ns);
    if (policy) {
      if (!inNs) this.policiesByNamespace.set(ns, (inNs = new Map<string, BackendTlsPolicyObject>()));
      inNs.set(name, policy);
    } else if (inNs) {
      inNs.delete(name);
      if (inNs.size === 0) this.policiesByNamespace.delete(ns);
    }
    this.ctx.apply(backendTlsPolicyName(ns, name), policy ? this.desiredForPolicy(policy) : ABSENT);
  }

  private policiesReferring(namespace: string, kind: 'Secret' | 'ConfigMap', name: string): void {
    for (const policy of this.policiesByNamespace.get(namespace)?.values() ?? []) {
      if (policy.caCertificateRefs.some((r) => r.group === '' && r.kind === kind && r.name === name)) {
        this.ctx.apply(backendTlsPolicyName(namespace, policy.meta.name), this.desiredForPolicy(policy));
      }
    }
  }

  /** Every reference must resolve: a bundle short of one CA would fail backends at random. */
  private desiredForPolicy(policy: BackendTlsPolicyObject): DesiredSecret {
    const { namespace } = policy.meta;
    const policySource: SourceObject = { kind: 'BackendTLSPolicy', apiVersion: POLICY_API_VERSION, meta: policy.meta };
    if (policy.caCertificateRefs.length === 0) return ABSENT; // wellKnownCACertificates: Envoy's own config, not SDS
    const pems: string[] = [];
    for (const ref of policy.caCertificateRefs) {
      let pem: string | undefined;
      if (ref.group === '' && ref.kind === 'ConfigMap') {
        const cm = this.ctx.lookupConfigMap(namespace, ref.name);
        pem = cm && this.ctx.config.configMapKeys.map((k) => cm.data[k]).find(Boolean);
      } else if (ref.group === '' && ref.kind === 'Secret') {
        const secret = this.ctx.lookupSecret(namespace, ref.name);
        pem = secret && CA_SECRET_TYPES.has(secret.type) ? secret.data['ca.crt'] : undefined;
      } else {
        return {
          state: 'invalid',
          code: 'MISSING_KEYS',
          message: `caCertificateRefs: kind ${ref.kind} of group "${ref.group}" is not supported (ConfigMap or Secret)`,
          source: policySource,
        };
      }
      if (!pem) {
        return {
          state: 'invalid',
          code: 'MISSING_KEYS',
          message: `caCertificateRefs: ${ref.kind} ${namespace}/${ref.name} does not exist or has no CA certificate (ca.crt)`,
          source: policySource,
        };
      }
      pems.push(pem.endsWith('\n') ? pem : `${pem}\n`);
    }
    // subjectAltNames replace the hostname for verification (Gateway API spec); SNI is Envoy's.
    const sans: SubjectAltNameMatch[] =
      policy.subjectAltNames.length > 0
        ? policy.subjectAltNames.map((s) => ({ type: s.type === 'URI' ? 'URI' : 'DNS', value: s.value }))
        : policy.hostname
          ? [{ type: 'DNS', value: policy.hostname }]
          : [];
    return {
      state: 'present',
      material: { kind: 'validation_context', trustedCa: pems.join(''), ...(sans.length > 0 ? { matchSubjectAltNames: sans } : {}) },
      source: policySource,
    };
  }
}
