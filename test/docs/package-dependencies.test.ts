// package.json's sections match what the code loads: every package src/ imports is a
// runtime dependency (the image installs only those), and every runtime dependency is
// imported by src/ (a test-only package there would ship in the image for nothing).

import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { test } from 'node:test';

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((e) => {
    const p = join(dir, e);
    return statSync(p).isDirectory() ? tsFiles(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Package names a file imports at runtime (type-only imports load nothing). */
function runtimeImports(text: string): string[] {
  const names: string[] = [];
  const re = /^\s*import\s+(?!type\s)(?:[^'"]*?\sfrom\s+)?['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/gm;
  for (const m of text.matchAll(re)) {
    const spec = m[1] ?? m[2]!;
    if (spec.startsWith('.') || spec.startsWith('node:') || builtinModules.includes(spec)) continue;
    names.push(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
  }
  return names;
}

test('every package src/ loads is a dependency, and every dependency is loaded by src/', () => {
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as {
    dependencies: Record<string, string>;
    devDependencies: Record<string, string>;
  };
  const used = new Set(tsFiles('src').flatMap((f) => runtimeImports(readFileSync(f, 'utf8'))));
  assert.deepEqual([...used].filter((n) => !(n in pkg.dependencies)).sort(), [], 'imported by src/ but not under dependencies');
  assert.deepEqual(
    Object.keys(pkg.dependencies)
      .filter((n) => !used.has(n))
      .sort(),
    [],
    'under dependencies but not imported by src/',
  );
});
