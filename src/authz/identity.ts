/** Who is on the other end of a stream, as established by the transport. */
export interface CallerIdentity {
  /**
   * loopback: a TCP peer on 127.0.0.0/8 or ::1 (the local default's trust boundary);
   * unix: a Unix socket peer (the socket's file mode is the boundary);
   * x509: an mTLS client certificate; serviceaccount: a verified Kubernetes token;
   * anonymous: nothing established.
   */
  kind: 'loopback' | 'unix' | 'x509' | 'serviceaccount' | 'anonymous';
  /** What policies match on: a SPIFFE ID, `dns:<name>`, `system:serviceaccount:ns:sa`, … */
  principals: string[];
  /** The transport peer, for logs. */
  peer: string;
  /** For serviceaccount identities: the namespace and name. */
  serviceAccount?: { namespace: string; name: string };
}

export function describeIdentity(id: CallerIdentity): string {
  return `${id.kind}:${id.principals[0] ?? id.peer}`;
}
