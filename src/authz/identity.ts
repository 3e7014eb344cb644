/** Who is on the other end of a stream, as established by the transport. */
export interface CallerIdentity {
  /**
   * loopback: a TCP peer on 127.0.0.0/8, ::1 or ::ffff:127.0.0.0/104, when loopback is
   * trusted (the local default's trust boundary; off by default in Kubernetes, where a
   * sidecar delivers every peer from loopback);
   * unix: a Unix socket peer (the socket's file mode is the boundary);
   * x509: an mTLS client certificate; serviceaccount: a verified Kubernetes token;
   * anonymous: nothing established.
   */
  kind: 'loopback' | 'unix' | 'x509' | 'serviceaccount' | 'anonymous';
  /**
   * For logs and status: a SPIFFE ID, `dns:<name>`, `system:serviceaccount:ns:sa`, … A URI
   * SAN that could be read as another kind of name is shown as `uri:<uri>`. Policies
   * match certificate names on `certificate`, never on these strings.
   */
  principals: string[];
  /** The names of a verified client certificate, URI and DNS SANs kept apart. */
  certificate?: { uris: readonly string[]; dnsNames: readonly string[] };
  /** The transport peer, for logs. */
  peer: string;
  /** For serviceaccount identities: the namespace and name. */
  serviceAccount?: { namespace: string; name: string };
}

export function describeIdentity(id: CallerIdentity): string {
  return `${id.kind}:${id.principals[0] ?? id.peer}`;
}
