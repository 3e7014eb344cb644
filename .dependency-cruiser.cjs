// Dependency rules for src/ (`npm run lint`): the floors of DESIGN.md's Layout. A folder
// imports only from its own floor or the floors below; no cycles between folders.
/** @type {string[][]} Floors from the bottom; a folder may import only its floor and below. */
const floors = [
  ['pki', 'observability', 'fs', 'net'], // toolkits every floor may use
  ['store', 'config'], // validated versions; config schemas
  ['kubernetes'], // a library: client, informer, lease, names
  ['authz'], // identities, policy, access reviews
  ['sources'], // feed the store
  ['sds'], // sessions, encoding, the stream driver
  ['transport', 'delivery'], // the gRPC edge; who holds which version
  ['issuance'], // the engine
];
const inFolders = (folders) => `^src/(${folders.join('|')})/`;
const above = (i) => floors.slice(i + 1).flat();
// The entry points and their wiring (main.ts, cli.ts, *-wiring.ts, cli/, client/) are the top floor.
const top = '^src/([^/]+[.]ts$|cli/|client/)';

module.exports = {
  forbidden: [
    ...floors.map((folders, i) => ({
      name: `floor-${folders.join('-')}`,
      comment: `${folders.join(', ')} may import only from their floor and below (DESIGN.md, Layout)`,
      severity: 'error',
      from: { path: inFolders(folders) },
      to: { path: [...(above(i).length > 0 ? [inFolders(above(i))] : []), top] },
    })),
    {
      name: 'sources-never-import-sds-or-transport',
      comment: 'Sources meet the transport only at the store (DESIGN.md, Data flow)',
      severity: 'error',
      from: { path: '^src/sources/' },
      to: { path: '^src/(sds|transport)/' },
    },
    {
      name: 'sds-imports-no-transport',
      comment: 'Sessions and the stream driver know no gRPC edge: it maps their outcomes to codes',
      severity: 'error',
      from: { path: '^src/sds/' },
      to: { path: '^src/transport/' },
    },
    {
      name: 'kubernetes-is-a-library',
      comment: 'kubernetes/ imports no application folder (only toolkits, and ConfigError)',
      severity: 'error',
      from: { path: '^src/kubernetes/' },
      to: { path: '^src/', pathNot: ['^src/kubernetes/', inFolders(floors[0]), '^src/config/config-error[.]ts$'] },
    },
    {
      name: 'no-folder-cycles',
      comment: 'Folders depend on each other in one direction only',
      severity: 'error',
      scope: 'folder',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'no-module-cycles',
      comment: 'Modules load in one order (a cycle through a type-only import is no load order)',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
