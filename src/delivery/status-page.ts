import { createHash } from 'node:crypto';
import type { NodeDelivery, SecretDelivery } from './delivery-report.js';

/** What the page shows; gathered by main.ts from the store, the streams and the engine. */
export interface StatusPageData {
  version: string;
  replica: string;
  generatedAt: Date;
  fleet: boolean;
  secrets: Array<{
    name: string;
    kind: string;
    version: string;
    origin: string;
    subject: string;
    notAfter: Date;
    warnings: readonly string[];
    rejection?: { code: string; message: string; at: string };
  }>;
  notLoaded: Array<{ name: string; cause: string }>;
  gateways: NodeDelivery[];
  certificates: Array<{
    id: string;
    secretName: string;
    ready: string;
    reason: string;
    message: string;
    notAfter?: string;
    renewalTime?: string;
  }>;
  /** CA issuers' staged rotations (absent: none has run); the issuance engine's CaRotationStatus. */
  caRotations?: RotationRow[];
}

interface CaRow {
  subject: string;
  sha256Fingerprint: string;
}

/** The part of a CA rotation's status the page shows. */
export interface RotationRow {
  issuer: string;
  phase: string;
  phaseSince: string;
  halted?: { message: string };
  oldCA: CaRow[];
  newCA: CaRow[];
  leaves?: { total: number; reissued: number };
  waitingFor: Array<{ secret: string; state: string; node?: string }>;
  waitingCount: number;
}

const STYLE = `
:root{color-scheme:light dark;--ok:#1a7f37;--warn:#9a6700;--bad:#cf222e;--muted:#6e7781;--line:#d0d7de}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;padding:16px;max-width:1200px}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:24px 0 8px}
p.meta{color:var(--muted);margin:0 0 8px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid var(--line);vertical-align:top;overflow-wrap:break-word}
th{font-weight:600;font-size:12px;text-transform:uppercase;color:var(--muted);white-space:nowrap}
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace;overflow-wrap:anywhere}
.badge{display:inline-block;padding:0 6px;border-radius:10px;font-size:12px;font-weight:600;color:#fff;white-space:nowrap}
.ok{background:var(--ok)}.warn{background:var(--warn)}.bad{background:var(--bad)}.muted{background:var(--muted)}
.days-ok{color:var(--ok)}.days-warn{color:var(--warn)}.days-bad{color:var(--bad);font-weight:600}
.empty{color:var(--muted)}
ul.subs{list-style:none;margin:0;padding:0}ul.subs li{margin:2px 0}
@media (max-width:640px){
 thead{display:none}
 table,tbody,tr,td{display:block;width:100%}
 tr{border-bottom:1px solid var(--line);padding:6px 0}
 td{border:0;padding:2px 0}
 td[data-label]::before{content:attr(data-label) ": ";font-weight:600;color:var(--muted)}
 td.blank{display:none}
}`;

/** The Content-Security-Policy that allows exactly this page's one style block and nothing else. */
export const STATUS_PAGE_CSP = `default-src 'none'; style-src 'sha256-${createHash('sha256').update(STYLE).digest('base64')}'; img-src 'none'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'`;

/** Every interpolated value goes through here: names and NACK messages come from outside. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const STATE_CLASS: Record<SecretDelivery['state'], string> = {
  SYNCED: 'ok',
  PENDING: 'warn',
  STALE: 'warn',
  NACKED: 'bad',
  NOT_SENT: 'muted',
};

function daysLeft(notAfter: Date, now: Date): string {
  const days = Math.floor((notAfter.getTime() - now.getTime()) / 86_400_000);
  const cls = days < 0 ? 'days-bad' : days < 14 ? 'days-bad' : days < 30 ? 'days-warn' : 'days-ok';
  const text = days < 0 ? `expired ${-days} d ago` : `${days} d`;
  return `<span class="${cls}">${escapeHtml(text)}</span>`;
}

function td(label: string, html: string): string {
  return `<td data-label="${escapeHtml(label)}"${html === '' ? ' class="blank"' : ''}>${html}</td>`;
}

function table(headers: string[], rows: string[][], empty: string): string {
  if (rows.length === 0) return `<p class="empty">${escapeHtml(empty)}</p>`;
  return `<table><thead><tr>${headers.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c, i) => td(headers[i]!, c)).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

/** The status page at `/`: plain HTML and CSS, no script, no external asset. */
export function renderStatusPage(d: StatusPageData): string {
  const e = escapeHtml;
  const secrets = table(
    ['Secret', 'Type', 'Version', 'Subject', 'Expires', 'Left', 'Origin', 'Notes'],
    d.secrets.map((s) => [
      `<code>${e(s.name)}</code>`,
      e(s.kind === 'tls_certificate' ? 'certificate' : 'CA bundle'),
      `<code>${e(s.version.slice(0, 8))}</code>`,
      e(s.subject),
      e(s.notAfter.toISOString().slice(0, 10)),
      daysLeft(s.notAfter, d.generatedAt),
      `<code>${e(s.origin)}</code>`,
      [
        ...s.warnings.map((w) => `<span class="badge warn">warning</span> ${e(w)}`),
        ...(s.rejection ? [`<span class="badge bad">${e(s.rejection.code)}</span> last update rejected ${e(s.rejection.at)}`] : []),
      ].join('<br>'),
    ]),
    'No secrets are served yet.',
  );
  const notLoaded = d.notLoaded.length
    ? `<h2>Declared, not served</h2>${table(
        ['Secret', 'Cause'],
        d.notLoaded.map((n) => [`<code>${e(n.name)}</code>`, e(n.cause)]),
        '',
      )}`
    : '';
  const gateways = table(
    ['Gateway', 'Cluster', 'Identity', 'Replica', 'Secrets'],
    d.gateways.map((g) => [
      `<code>${e(g.node.id)}</code>`,
      e(g.node.cluster),
      `<code>${e(g.identity)}</code>`,
      e(g.replica),
      `<ul class="subs">${g.secrets
        .map(
          (s) =>
            `<li><span class="badge ${STATE_CLASS[s.state]}">${e(s.state)}</span> <code>${e(s.name)}</code>${s.nack ? ` — rejected <code>${e(s.nack.version.slice(0, 8))}</code>: ${e(s.nack.message)}` : ''}${
              s.state === 'STALE' || s.state === 'PENDING' ? ` since ${e(s.behindSince ?? '')}` : ''
            }</li>`,
        )
        .join('')}</ul>`,
    ]),
    'No gateway is connected.',
  );
  const certificates = d.certificates.length
    ? `<h2>Certificates being issued</h2>${table(
        ['Certificate', 'Secret', 'Ready', 'Reason', 'Expires', 'Renews'],
        d.certificates.map((c) => [
          `<code>${e(c.id)}</code>`,
          `<code>${e(c.secretName)}</code>`,
          `<span class="badge ${c.ready === 'True' ? 'ok' : c.ready === 'False' ? 'bad' : 'muted'}">${e(c.ready)}</span>`,
          `${e(c.reason)}${c.message ? `: ${e(c.message)}` : ''}`,
          e(c.notAfter ?? '-'),
          e(c.renewalTime ?? '-'),
        ]),
        '',
      )}`
    : '';
  const rotations = d.caRotations?.length
    ? `<h2>CA rotations</h2>${table(
        ['Issuer', 'Phase', 'Since', 'Old CA', 'New CA', 'Waiting for'],
        d.caRotations.map((r) => [
          `<code>${e(r.issuer)}</code>`,
          `<span class="badge ${r.halted ? 'bad' : r.phase === 'Complete' ? 'ok' : r.phase === 'Aborted' ? 'muted' : 'warn'}">${e(r.phase)}${r.halted ? ' halted' : ''}</span>${r.halted ? ` ${e(r.halted.message)}` : ''}`,
          e(r.phaseSince),
          r.oldCA.map((c) => `${e(c.subject)} <code>${e(c.sha256Fingerprint.slice(0, 11))}</code>`).join('<br>'),
          r.newCA.map((c) => `${e(c.subject)} <code>${e(c.sha256Fingerprint.slice(0, 11))}</code>`).join('<br>'),
          [
            ...(r.leaves ? [`leaves ${r.leaves.reissued}/${r.leaves.total} re-issued`] : []),
            ...r.waitingFor
              .slice(0, 5)
              .map((w) => `<code>${e(w.secret)}</code> ${e(w.state)}${w.node ? ` on <code>${e(w.node)}</code>` : ''}`),
            ...(r.waitingCount > 5 ? [`and ${r.waitingCount - 5} more`] : []),
          ].join('<br>'),
        ]),
        '',
      )}`
    : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta http-equiv="refresh" content="15"><title>envoy-sds status</title><style>${STYLE}</style></head>
<body><h1>envoy-sds</h1><p class="meta">version ${e(d.version)} · replica ${e(d.replica)} · ${e(d.generatedAt.toISOString())}${d.fleet ? ' · whole fleet' : ' · this replica'} · <a href="/status">/status</a> · <a href="/delivery">/delivery</a> · <a href="/metrics">/metrics</a></p>
<h2>Secrets</h2>${secrets}${notLoaded}
<h2>Gateways</h2>${gateways}${certificates}${rotations}
</body></html>
`;
}
