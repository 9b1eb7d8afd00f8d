/** State changes of instances, for the event stream (SSE) and anyone waiting on a state. */
import { EventEmitter } from 'node:events';
import type { DesiredState, InstanceState } from './spec.js';

export interface InstanceEvent {
  type: 'state' | 'deleted';
  id: string;
  ownerId: string;
  name: string;
  state: InstanceState;
  desiredState: DesiredState;
  restartCount: number;
  exitCode: number | null;
  exitSignal: string | null;
  lastError: string | null;
  at: string;
}

export class InstanceEvents {
  private readonly emitter = new EventEmitter();

  constructor() {
    // One listener per open event stream and per waiting request: no fixed cap.
    this.emitter.setMaxListeners(0);
  }

  emit(e: InstanceEvent): void {
    this.emitter.emit('event', e);
  }

  subscribe(fn: (e: InstanceEvent) => void): () => void {
    this.emitter.on('event', fn);
    return () => this.emitter.off('event', fn);
  }
}
