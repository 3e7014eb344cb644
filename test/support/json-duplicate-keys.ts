// JSON.parse keeps the last of two equal keys silently; log lines must not have any.

/** The keys that appear twice in one object of this JSON text (any depth). */
export function duplicateKeys(json: string): string[] {
  const dups: string[] = [];
  const stack: Array<Set<string> | null> = [];
  let i = 0;
  let expectKey = false;
  while (i < json.length) {
    const c = json[i]!;
    if (c === '"') {
      let j = i + 1;
      while (json[j] !== '"') j += json[j] === '\\' ? 2 : 1;
      const top = stack[stack.length - 1];
      if (expectKey && top) {
        const key = JSON.parse(json.slice(i, j + 1)) as string;
        if (top.has(key)) dups.push(key);
        top.add(key);
        expectKey = false;
      }
      i = j + 1;
      continue;
    }
    if (c === '{') {
      stack.push(new Set());
      expectKey = true;
    } else if (c === '[') stack.push(null);
    else if (c === '}' || c === ']') stack.pop();
    else if (c === ',') expectKey = stack[stack.length - 1] !== null;
    i++;
  }
  return dups;
}
