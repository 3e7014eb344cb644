import { grantAllowsGatewaySecret, type GatewayObject, type ReferenceGrantObject } from './gateway-api-objects.js';

/**
 * Which Gateway may use which Secret, from the Gateways' listeners and the
 * ReferenceGrants, as the watches last saw them. No I/O: the informers feed it, the
 * authorizer asks it (synchronously, on every push) and the source asks which Secrets to
 * serve under `kubernetes-gateway://`. Listeners hear of every change.
 */
export class GatewayReferences {
  /** "ns/name" of a Gateway -> the Secrets its listeners name. */
  private readonly gateways = new Map<string, GatewayObject>();
  /** namespace -> "ns/name" of a grant -> the grant. */
  private readonly grants = new Map<string, Map<string, ReferenceGrantObject>>();
  /** "ns/name" of a Secret -> how many Gateway references name it. */
  private readonly referenced = new Map<string, number>();
  private readonly listeners = new Set<() => void>();

  setGateway(key: string, gateway: GatewayObject | undefined): Set<string> {
    const touched = new Set<string>();
    const before = this.gateways.get(key);
    for (const ref of before?.certificateRefs ?? []) touched.add(this.count(`${ref.namespace}/${ref.name}`, -1));
    if (gateway) this.gateways.set(key, gateway);
    else this.gateways.delete(key);
    for (const ref of gateway?.certificateRefs ?? []) touched.add(this.count(`${ref.namespace}/${ref.name}`, 1));
    this.changed();
    return touched;
  }

  setGrant(key: string, grant: ReferenceGrantObject | undefined): void {
    const ns = key.slice(0, key.indexOf('/'));
    let inNs = this.grants.get(ns);
    if (grant) {
      if (!inNs) this.grants.set(ns, (inNs = new Map<string, ReferenceGrantObject>()));
      inNs.set(key, grant);
    } else if (inNs) {
      inNs.delete(key);
      if (inNs.size === 0) this.grants.delete(ns);
    }
    this.changed();
  }

  /** Some Gateway names this Secret (allowed or not): worth serving under the gateway scheme. */
  isReferenced(namespace: string, secret: string): boolean {
    return this.referenced.has(`${namespace}/${secret}`);
  }

  /**
   * Gateway `gatewayNamespace/gatewayName` names Secret `namespace/secret` in a listener's
   * certificateRefs, and the Secret is in the Gateway's namespace or a ReferenceGrant in
   * the Secret's namespace allows it.
   */
  gatewayMayUse(gatewayNamespace: string, gatewayName: string, namespace: string, secret: string): boolean {
    const gw = this.gateways.get(`${gatewayNamespace}/${gatewayName}`);
    if (!gw?.certificateRefs.some((r) => r.namespace === namespace && r.name === secret)) return false;
    if (namespace === gatewayNamespace) return true;
    for (const grant of this.grants.get(namespace)?.values() ?? []) {
      if (grantAllowsGatewaySecret(grant, gatewayNamespace, secret)) return true;
    }
    return false;
  }

  /** Calls `listener` after every change of a Gateway or grant. Returns the remover. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private count(key: string, delta: number): string {
    const n = (this.referenced.get(key) ?? 0) + delta;
    if (n > 0) this.referenced.set(key, n);
    else this.referenced.delete(key);
    return key;
  }

  private changed(): void {
    for (const l of [...this.listeners]) l();
  }
}
