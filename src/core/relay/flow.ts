/**
 * Flow control for one direction of a pairing: frames go out to `to`; while more than
 * `highWater` bytes are on their way, the sending side `from` is not read, so a fast sender
 * and a slow receiver cost bounded memory instead of a growing queue.
 */
import type { Frame, RelayEnd } from './ends.js';

export class Flow {
  private inFlight = 0;
  private paused = false;

  constructor(
    private readonly from: RelayEnd,
    private readonly to: RelayEnd,
    private readonly highWater: number,
  ) {}

  forward(frame: Frame): void {
    const size = frame.data.length;
    this.inFlight += size;
    if (this.inFlight > this.highWater && !this.paused) {
      this.paused = true;
      this.from.pause();
    }
    this.to.send(frame, () => {
      this.inFlight -= size;
      if (this.paused && this.inFlight <= this.highWater / 2) {
        this.paused = false;
        this.from.resume();
      }
    });
  }
}
