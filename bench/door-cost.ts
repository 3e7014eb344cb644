/**
 * The store's door per certificate, measured in this process: CPU time of
 * validateMaterial on distinct leaf + intermediate chains, for the CA-rollover
 * target (completion within cost x certificates / workers + 1 s). The first few are
 * a warm-up (JIT, the intermediate entering the parsed-CA cache).
 */
import { validateMaterial } from '../src/store/validate-material.js';
import type { Material } from './materials.js';

export function measureDoorCostMicros(materials: readonly Material[]): number {
  const warm = Math.min(200, Math.floor(materials.length / 4));
  const now = new Date();
  const run = (ms: readonly Material[]): void => {
    for (const m of ms) validateMaterial({ kind: 'tls_certificate', certificateChain: m.chainPem, privateKey: m.keyPem }, now);
  };
  run(materials.slice(0, warm));
  const rest = materials.slice(warm);
  const c0 = process.cpuUsage();
  run(rest);
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / Math.max(1, rest.length);
}
