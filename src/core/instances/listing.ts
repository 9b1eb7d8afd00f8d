/**
 * The listing (`GET /api/v1/instances`) as JSON text, from a copy of each instance's listed
 * JSON kept in memory. A listing reads only the ids and write stamps of the instances, in
 * order (a few bytes a row), and joins the copies it holds; it reads in full only the rows it
 * has no copy of, or whose copy is out of date. Turning 5,000 rows of 16 columns into JS
 * values was most of what a full listing cost (docs/instances.md, "Scale").
 *
 * A copy is never stale: every write of an instance goes through the store, which tells this
 * cache the id (`InstanceStore.onChange`) and the copy is dropped; a copy read while a write
 * of its instance was under way is not kept. A write by another process on the same database
 * (another corral) is caught by its stamp, `updated_at`. Managers sharing a database (holders)
 * do not use it: their listing says who holds each instance now, which no copy can.
 */
import type { InstanceStore, StoredInstance } from '../../store/instances.js';

/** Rows read by id (`in` list) at most; more missing than this and one read takes them all. */
const MAX_READ_BY_ID = 500;

/** One instance of a listing as JSON text: `show`'s document (without holders), field by field. */
export function listedJson(r: StoredInstance): string {
  const str = (v: string | null) => (v === null ? 'null' : JSON.stringify(v));
  const iso = (ms: number | null) => (ms === null ? 'null' : `"${new Date(ms).toISOString()}"`);
  return (
    `{"spec":${r.specJson},"id":${str(r.id)},"name":${str(r.name)},"owner":${str(r.ownerName)},` +
    `"desiredState":${str(r.desiredState)},"state":${str(r.state)},"generation":${r.generation},"restartCount":${r.restartCount},` +
    `"exitCode":${r.exitCode === null ? 'null' : r.exitCode},"exitSignal":${str(r.exitSignal)},"lastError":${str(r.lastError)},` +
    `"ports":${r.portsJson},"createdAt":${iso(r.createdAt)},"updatedAt":${iso(r.updatedAt)},"startedAt":${iso(r.startedAt)}}`
  );
}

interface Copy {
  updatedAt: number;
  /**
   * The JSON as UTF-8 bytes: a listing copies them into one buffer. (Kept as strings, each a
   * concatenation of ~30 pieces, the join of 5,000 flattened them all again on every listing.)
   */
  json: Buffer;
}

const OPEN = Buffer.from('{"instances":[');
const COMMA = Buffer.from(',');
const CLOSE = Buffer.from(']}');

/**
 * `text` as UTF-8 in a buffer of its own: `Buffer.from` cuts small buffers out of shared 8 KB
 * slabs, and one kept copy would hold its whole slab after the others were replaced.
 */
function ownBytes(text: string): Buffer {
  const bytes = Buffer.allocUnsafeSlow(Buffer.byteLength(text));
  bytes.write(text);
  return bytes;
}

export class InstanceListing {
  private readonly copies = new Map<string, Copy>();
  /** Counts writes; `writtenAt` holds the count at each instance's last write while a listing is under way. */
  private writes = 0;
  private readonly writtenAt = new Map<string, number>();
  private listings = 0;

  constructor(private readonly instances: InstanceStore) {
    instances.onChange((id) => {
      this.copies.delete(id);
      this.writes++;
      if (this.listings) this.writtenAt.set(id, this.writes);
    });
  }

  /** `{"instances":[…]}` of every instance, or of one owner's, in creation order, as UTF-8. */
  async json(ownerId?: string): Promise<Buffer> {
    this.listings++;
    try {
      return await this.build(ownerId);
    } finally {
      // Write counts matter only to listings under way.
      if (--this.listings === 0) this.writtenAt.clear();
    }
  }

  private async build(ownerId: string | undefined): Promise<Buffer> {
    const before = this.writes;
    const stamps = await this.instances.listStamps(ownerId);
    // Each instance's copy as the stamps found it (a write meanwhile drops it from `copies`).
    const docs: (Buffer | undefined)[] = stamps.map((s) => {
      const copy = this.copies.get(s.id);
      return copy?.updatedAt === s.updatedAt ? copy.json : undefined;
    });
    const missing = stamps.filter((_, i) => docs[i] === undefined).map((s) => s.id);
    if (missing.length) {
      const rows = await (missing.length <= MAX_READ_BY_ID ? this.instances.listStored(ownerId, missing) : this.instances.listStored(ownerId));
      const read = new Map<string, Buffer>();
      for (const r of rows) {
        const json = ownBytes(listedJson(r));
        read.set(r.id, json);
        // Written since this listing began: the row may predate the write; not kept.
        if ((this.writtenAt.get(r.id) ?? 0) <= before) this.copies.set(r.id, { updatedAt: r.updatedAt, json });
      }
      // An instance deleted between the two reads is left out (it is gone either way).
      stamps.forEach((s, i) => {
        docs[i] ??= read.get(s.id);
      });
    }
    if (!ownerId) this.forgetAllBut(stamps);
    const parts: Buffer[] = [OPEN];
    for (const d of docs) {
      if (d === undefined) continue;
      if (parts.length > 1) parts.push(COMMA);
      parts.push(d);
    }
    parts.push(CLOSE);
    return Buffer.concat(parts);
  }

  /** After a listing of all: copies of instances no longer stored (deleted with their owner) go. */
  private forgetAllBut(stamps: { id: string }[]): void {
    if (this.copies.size <= stamps.length) return;
    const live = new Set(stamps.map((s) => s.id));
    for (const id of this.copies.keys()) if (!live.has(id)) this.copies.delete(id);
  }
}
