// Name shapes of the issuance resources, as RE2-compatible patterns (the CRDs carry
// them too, so the API server refuses what the engine would).

import * as z from 'zod';
import { matching } from '../../config/schema/fields.js';

/** Secret names double as SDS names and directory names: DNS-label-like text. */
export const dnsLabelName = matching(
  /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/,
  (s) => `"${s}" must be lowercase letters, digits, '-' and '.', starting and ending with a letter or digit`,
);

/** A Secret data key, as Kubernetes allows them (and safe as a file name). */
export const dataKey = matching(/^[-_a-zA-Z0-9][-._a-zA-Z0-9]*$/, (s) => `"${s}" is not a valid Secret data key`);

const LABEL = '[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?';

/** A DNS name; a wildcard only as the whole first label. */
export const dnsName = matching(
  new RegExp(`^(\\*\\.)?${LABEL}(\\.${LABEL})*$`),
  (s) => `"${s}" is not a DNS name (a wildcard is allowed only as the whole first label, "*.example.com")`,
).max(253, {
  error: (iss) => `"${typeof iss.input === 'string' ? iss.input : ''}" is not a DNS name (longer than 253 characters)`,
});

const GO_DURATION_PART = '([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(ns|us|µs|ms|s|m|h)';

/** Go's time.Duration syntax, as cert-manager writes durations ("2160h", "720h0m0s"). */
export const goDuration = matching(
  new RegExp(`^(0|${GO_DURATION_PART}+)$`),
  (s) => `"${s}" is not a duration (Go syntax, e.g. "2160h", "720h0m0s", "90s")`,
);

export const secretKeySelector = z.strictObject({ name: dnsLabelName, key: dataKey });
