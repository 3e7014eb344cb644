/**
 * Splits a Kubernetes list response (`{"kind":…,"metadata":{…},"items":[{…},{…}]}`) as
 * its bytes arrive: each element of the top-level `items` array is handed over, parsed,
 * the moment its closing brace arrives, and only the envelope (kind, metadata with the
 * resourceVersion and continue token) is kept for the end. So a page of large Secrets is
 * never held whole, as text or as objects: at most one item and the envelope are.
 *
 * Works on bytes: JSON's structural characters are ASCII, and every byte of a multi-byte
 * UTF-8 character is >= 0x80, so a chunk boundary inside a character cannot confuse it.
 */
export class ListItemSplitter {
  private depth = 0;
  private inString = false;
  private escaped = false;
  private mode: 'envelope' | 'between' | 'item' = 'envelope';
  private readonly envelope: Buffer[] = [];
  private item: Buffer[] = [];

  constructor(private readonly onItem: (item: Record<string, unknown>) => void) {}

  write(chunk: Buffer): void {
    let start = 0;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (b === BACKSLASH) this.escaped = true;
        else if (b === QUOTE) this.inString = false;
        continue;
      }
      if (b === QUOTE) {
        this.inString = true;
      } else if (b === OPEN_BRACE || b === OPEN_BRACKET) {
        if (this.mode === 'between') {
          this.mode = 'item';
          start = i;
        }
        this.depth++;
        // `[` opening the top-level "items": from here, elements are items.
        if (this.mode === 'envelope' && b === OPEN_BRACKET && this.depth === 2 && this.endsWithItemsKey(chunk.subarray(start, i))) {
          this.envelope.push(Buffer.from(chunk.subarray(start, i + 1)));
          this.mode = 'between';
          start = i + 1;
        }
      } else if (b === CLOSE_BRACE || b === CLOSE_BRACKET) {
        this.depth--;
        if (this.mode === 'item' && this.depth === 2) {
          this.item.push(chunk.subarray(start, i + 1));
          const text = Buffer.concat(this.item).toString('utf8');
          this.item = [];
          this.mode = 'between';
          start = i + 1;
          this.onItem(JSON.parse(text) as Record<string, unknown>);
        } else if (this.mode === 'between' && this.depth === 1) {
          // The `]` closing "items" belongs to the envelope again.
          this.mode = 'envelope';
          start = i;
        }
      }
    }
    // Copies: the chunk's memory is the socket's, and an item may span many chunks.
    if (this.mode === 'envelope' && start < chunk.length) this.envelope.push(Buffer.from(chunk.subarray(start)));
    else if (this.mode === 'item') this.item.push(Buffer.from(chunk.subarray(start)));
  }

  /** The list without its items (`"items":[]`), once the whole response has been written. */
  end(): Record<string, unknown> {
    if (this.depth !== 0 || this.mode !== 'envelope') throw new Error('list response ended mid-document');
    return JSON.parse(Buffer.concat(this.envelope).toString('utf8')) as Record<string, unknown>;
  }

  private endsWithItemsKey(pending: Buffer): boolean {
    const parts = [pending];
    let n = pending.length;
    for (let j = this.envelope.length - 1; j >= 0 && n < 64; j--) {
      parts.unshift(this.envelope[j]!);
      n += this.envelope[j]!.length;
    }
    const tail = Buffer.concat(parts);
    return /"items"\s*:\s*$/.test(tail.subarray(Math.max(0, tail.length - 64)).toString('latin1'));
  }
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
