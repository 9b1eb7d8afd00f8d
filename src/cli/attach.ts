/**
 * `corral instance attach`: the terminal connected to an instance over the attach WebSocket —
 * its output printed, the terminal's input sent (raw mode on a TTY), until Ctrl-] or the
 * instance goes away. `ws` is loaded here, only by this command.
 */
import type { ApiClient } from './client.js';
import { CliError } from './output.js';

/** Ctrl-]: what telnet and docker use to detach. */
const DETACH_KEY = 0x1d;
/** After piped input ends, output is still printed until it has been quiet this long. */
const QUIET_AFTER_EOF_MS = 1000;

export async function attach(client: ApiClient, ref: string): Promise<void> {
  const { default: WebSocket } = await import('ws');
  const url = `${client.url.replace(/^http/, 'ws')}/api/v1/instances/${encodeURIComponent(ref)}/attach?streams=1`;
  const ws = new WebSocket(url, { headers: client.headers(), rejectUnauthorized: !client.insecure });
  const tty = process.stdin.isTTY;
  let inputEnded = false;
  const quiet = setTimeout(() => inputEnded && ws.close(), QUIET_AFTER_EOF_MS);
  return new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(quiet);
      if (tty) process.stdin.setRawMode(false);
      process.stdin.pause();
      resolve();
    };
    ws.on('open', () => {
      if (tty) {
        process.stdin.setRawMode(true);
        process.stderr.write('attached; detach with Ctrl-]\r\n');
      }
      process.stdin.on('data', (chunk: Buffer) => {
        const at = chunk.indexOf(DETACH_KEY);
        if (at !== -1) {
          if (at > 0) ws.send(chunk.subarray(0, at).toString());
          ws.close();
          return;
        }
        // A raw terminal sends CR for Enter; programs reading lines want LF.
        ws.send(tty ? chunk.toString().replace(/\r/g, '\n') : chunk.toString());
      });
      process.stdin.on('end', () => {
        inputEnded = true;
        quiet.refresh();
      });
      process.stdin.resume();
    });
    ws.on('message', (data) => {
      if (inputEnded) quiet.refresh();
      const { stream, line } = JSON.parse(data.toString()) as { stream: string; line: string };
      const nl = tty ? '\r\n' : '\n';
      (stream === 'stderr' ? process.stderr : process.stdout).write(`${line}${nl}`);
    });
    ws.on('close', done);
    ws.on('unexpected-response', (req, res) => {
      req.destroy();
      reject(new CliError(res.statusCode === 404 ? 'instance_not_found' : 'attach_failed', `attach refused: HTTP ${res.statusCode}`));
    });
    ws.on('error', (e) => reject(new CliError('attach_failed', e.message)));
  });
}
