/**
 * Summarises a V8 heap snapshot: self size by (type, constructor), and which objects
 * hold ArrayBuffer backing stores (Buffers live outside the V8 heap, so heapUsed does
 * not show them, but RSS does). For finding where the node peer's memory per stream
 * goes:
 *
 *   node --expose-gc --heapsnapshot-signal=SIGUSR2 dist/bench/node-peer.js --secrets 2000
 *   bench/bin/sds-load ... -scenario idle-memory -streams 2000 -names distinct -settle 30s
 *   curl 'http://<control>/stats?gc=1'; kill -USR2 <pid>
 *   node --max-old-space-size=8000 dist/bench/heap-summary.js Heap.*.heapsnapshot [--per 2000] [--top 40]
 *
 * --per divides totals by a count (the number of streams) to print bytes per stream.
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

interface HeapSnapshot {
  snapshot: {
    meta: {
      node_fields: string[];
      node_types: [string[], ...unknown[]];
      edge_fields: string[];
      edge_types: [string[], ...unknown[]];
    };
  };
  nodes: number[];
  edges: number[];
  strings: string[];
}

export interface HeapRow {
  key: string;
  count: number;
  bytes: number;
}

export function summarizeHeap(snap: HeapSnapshot): { byConstructor: HeapRow[]; backingStores: HeapRow[] } {
  const m = snap.snapshot.meta;
  const NF = m.node_fields.length;
  const EF = m.edge_fields.length;
  const nodeTypes = m.node_types[0];
  const edgeTypes = m.edge_types[0];
  const nf = (f: string) => m.node_fields.indexOf(f);
  const ef = (f: string) => m.edge_fields.indexOf(f);
  const [nType, nName, nSize, nEdges] = [nf('type'), nf('name'), nf('self_size'), nf('edge_count')];
  const [eType, eName, eTo] = [ef('type'), ef('name_or_index'), ef('to_node')];
  const { nodes, edges, strings } = snap;
  const count = nodes.length / NF;
  const type = (i: number) => nodeTypes[nodes[i * NF + nType]!] ?? '?';
  const name = (i: number) => strings[nodes[i * NF + nName]!] ?? '?';
  const size = (i: number) => nodes[i * NF + nSize]!;

  // First retainer of each node (strong edges only), with the edge's name.
  const retainer = new Int32Array(count).fill(-1);
  const retainerEdge = new Array<string>(count);
  for (let i = 0, e = 0; i < count; i++) {
    const end = e + nodes[i * NF + nEdges]! * EF;
    for (; e < end; e += EF) {
      const et = edgeTypes[edges[e + eType]!];
      if (et === 'weak' || type(i) === 'synthetic') continue;
      const to = edges[e + eTo]! / NF;
      if (retainer[to] !== -1) continue;
      retainer[to] = i;
      const en = edges[e + eName]!;
      retainerEdge[to] = et === 'element' || et === 'hidden' ? String(en) : (strings[en] ?? '?');
    }
  }

  const add = (map: Map<string, HeapRow>, key: string, bytes: number) => {
    const row = map.get(key) ?? { key, count: 0, bytes: 0 };
    row.count++;
    row.bytes += bytes;
    map.set(key, row);
  };
  const byCtor = new Map<string, HeapRow>();
  const stores = new Map<string, HeapRow>();
  for (let i = 0; i < count; i++) {
    const label = `${type(i)}:${name(i).slice(0, 80).replace(/\s+/g, ' ')}`;
    add(byCtor, label, size(i));
    if (name(i) !== 'system / JSArrayBufferData') continue;
    // Walk up: backing store <- ArrayBuffer <- Buffer/Uint8Array <- owner.field
    const path: string[] = [];
    for (let cur = i, d = 0; d < 5; d++) {
      const r = retainer[cur]!;
      if (r < 0) break;
      path.push(`${name(r)}.${retainerEdge[cur]}`);
      cur = r;
      if (!/ArrayBuffer|Uint8Array|Buffer|FastBuffer/.test(name(r))) break;
    }
    add(stores, path.join(' <- ') || '(unreferenced)', size(i));
  }
  const sorted = (map: Map<string, HeapRow>) => [...map.values()].sort((a, b) => b.bytes - a.bytes);
  return { byConstructor: sorted(byCtor), backingStores: sorted(stores) };
}

function main(): void {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { per: { type: 'string', default: '1' }, top: { type: 'string', default: '40' } },
  });
  const file = positionals[0];
  if (!file) {
    process.stderr.write('usage: heap-summary.js <file.heapsnapshot> [--per N] [--top N]\n');
    process.exit(1);
  }
  const per = Number(values.per);
  const top = Number(values.top);
  const s = summarizeHeap(JSON.parse(readFileSync(file, 'utf8')) as HeapSnapshot);
  const line = (r: HeapRow) =>
    `${String(r.count).padStart(8)} ${(r.bytes / 1024).toFixed(0).padStart(9)} KB ${(r.bytes / per).toFixed(0).padStart(8)} B/unit  ${r.key}`;
  console.log(`self size by type:constructor (count, total, per ${per})`);
  for (const r of s.byConstructor.slice(0, top)) console.log(line(r));
  console.log(`\nArrayBuffer backing stores by holder (count, total, per ${per})`);
  for (const r of s.backingStores.slice(0, top)) console.log(line(r));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) main();
