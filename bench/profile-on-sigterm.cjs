/**
 * Preload (NODE_OPTIONS=--require …) that profiles a process from its SIGTERM to its exit and
 * writes the .cpuprofile to $PROFILE_ON_SIGTERM: how a server spends its shutdown. Node 20
 * refuses --cpu-prof in NODE_OPTIONS, and an inspector client loses the profile when the
 * process exits; the inspector session's calls are synchronous, so 'exit' can still save it.
 */
const inspector = require('node:inspector');
const { writeFileSync } = require('node:fs');

const out = process.env.PROFILE_ON_SIGTERM;
if (out) {
  const session = new inspector.Session();
  session.connect();
  process.prependListener('SIGTERM', () => {
    session.post('Profiler.enable');
    session.post('Profiler.setSamplingInterval', { interval: 1000 });
    session.post('Profiler.start');
  });
  process.on('exit', () => {
    session.post('Profiler.stop', (err, res) => {
      if (!err) writeFileSync(out, JSON.stringify(res.profile));
    });
  });
}
