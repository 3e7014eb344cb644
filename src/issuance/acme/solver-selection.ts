// Which of an ACME issuer's solvers answers the challenge for one DNS name, by
// cert-manager's rules: a solver whose selector lists the exact name beats one whose
// selector lists a zone containing it (the longest zone wins), which beats one that
// selects by labels only, which beats one without a selector. More matching labels break
// a tie; then the first in the list wins. A pure function.

import type { AcmeSolver } from '../resources.js';

/**
 * `dnsName` is the name as requested (`*.example.com` for a wildcard); zones match the
 * name without its wildcard label.
 */
export function selectSolver(solvers: readonly AcmeSolver[], dnsName: string, labels: Record<string, string>): AcmeSolver | undefined {
  const name = dnsName.toLowerCase().replace(/\.$/, '');
  const base = name.startsWith('*.') ? name.slice(2) : name;
  let best: { solver: AcmeSolver; score: number[] } | undefined;
  for (const solver of solvers) {
    const score = scoreOf(solver, name, base, labels);
    if (!score) continue;
    if (!best || compare(score, best.score) > 0) best = { solver, score };
  }
  return best?.solver;
}

/** [dnsNames match, zone length, has labels, label count], or undefined when the solver does not apply. */
function scoreOf(solver: AcmeSolver, name: string, base: string, labels: Record<string, string>): number[] | undefined {
  const sel = solver.selector;
  if (!sel) return [0, 0, 0, 0];
  const labelEntries = Object.entries(sel.matchLabels);
  if (!labelEntries.every(([k, v]) => labels[k] === v)) return undefined;
  const hasNameRules = sel.dnsNames.length > 0 || sel.dnsZones.length > 0;
  const nameMatch = sel.dnsNames.includes(name) ? 1 : 0;
  const zone = sel.dnsZones.filter((z) => base === z || base.endsWith(`.${z}`)).reduce((longest, z) => Math.max(longest, z.length), 0);
  if (hasNameRules && nameMatch === 0 && zone === 0) return undefined;
  return [nameMatch, zone, labelEntries.length > 0 ? 1 : 0, labelEntries.length];
}

function compare(a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return (a[i] ?? 0) - (b[i] ?? 0);
  return 0;
}
