/**
 * The floor of log streaming (instances.bench.ts): a bare Node program that runs `sh -c CMD`
 * when a WebSocket client connects on 127.0.0.1 and sends what the child writes, a chunk of
 * its pipe per text frame, cut at the chunk's last newline so a frame holds whole lines (as
 * corral's do). No lines, no timestamps, no log file, no tail, no auth: what any server in
 * Node pays to move the bytes. Prints the port, then serves one client.
 *
 * Usage: node --import tsx bench/log-stream-floor.ts 'CMD'
 */
import { spawn } from 'node:child_process';
import { WebSocketServer } from 'ws';

const cmd = process.argv[2];
if (!cmd) throw new Error('usage: log-stream-floor.ts CMD');
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
wss.on('listening', () => process.stdout.write(`${(wss.address() as { port: number }).port}\n`));
wss.once('connection', (ws) => {
  const child = spawn('sh', ['-c', cmd], { stdio: ['ignore', 'pipe', 'inherit'] });
  let rest: Buffer = Buffer.alloc(0);
  child.stdout.on('data', (chunk: Buffer) => {
    const data = rest.length ? Buffer.concat([rest, chunk]) : chunk;
    const end = data.lastIndexOf(10);
    rest = data.subarray(end + 1);
    if (end >= 0) ws.send(data.subarray(0, end), { binary: false });
  });
  ws.on('close', () => {
    child.kill();
    wss.close();
  });
});
