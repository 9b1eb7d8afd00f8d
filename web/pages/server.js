// Admin: the whole server over the last hour — CPU and memory of all running instances
// (summed), of corral's own process and of the host — updated live from the events stream.
import { api, liveEvents } from '../lib/api.js';
import { bytes, keepLast, legend, lineChart, percent } from '../lib/charts.js';
import { h, render } from '../lib/dom.js';

const COLORS = { instances: '#1f5fbf', corral: '#b54708', host: '#5b6472' };

export async function serverPage(main) {
  const stats = await api('GET', '/stats');
  const samples = stats.samples;
  const cap = Math.ceil(stats.keepSeconds / stats.intervalSeconds);
  const now = h('div', { class: 'card server-now' });
  const cpuBox = h('div', { class: 'card chart-card' });
  const memBox = h('div', { class: 'card chart-card' });

  function draw() {
    const last = samples[samples.length - 1];
    render(now, last
      ? h('p', {},
        h('strong', {}, 'Running instances: '), h('span', { class: 'running' }, String(last.instances.running)),
        ` · load ${last.host.load1} on ${last.host.cpus} CPU${last.host.cpus === 1 ? '' : 's'}`,
        ` · host memory ${bytes(last.host.memoryTotalBytes - last.host.memoryFreeBytes)} used of ${bytes(last.host.memoryTotalBytes)}`)
      : h('p', { class: 'muted' }, `No samples yet: the first comes within ${stats.intervalSeconds} s.`));
    const cpu = [
      { name: 'instances', color: COLORS.instances, values: samples.map((s) => ({ t: s.t, v: s.instances.cpuPercent })) },
      { name: 'corral', color: COLORS.corral, values: samples.map((s) => ({ t: s.t, v: s.server.cpuPercent })) },
    ];
    const mem = [
      { name: 'instances', color: COLORS.instances, values: samples.map((s) => ({ t: s.t, v: s.instances.memoryBytes })) },
      { name: 'corral', color: COLORS.corral, values: samples.map((s) => ({ t: s.t, v: s.server.memoryBytes })) },
      { name: 'host used', color: COLORS.host, values: samples.map((s) => ({ t: s.t, v: s.host.memoryTotalBytes - s.host.memoryFreeBytes })) },
    ];
    render(cpuBox, h('h2', {}, 'CPU ', h('span', { class: 'muted now' }, last ? `instances ${percent(last.instances.cpuPercent)} · corral ${percent(last.server.cpuPercent)}` : '')),
      lineChart(cpu, { title: 'Server CPU', label: percent, max: (last?.host.cpus ?? 1) * 100 }), legend(cpu));
    render(memBox, h('h2', {}, 'Memory ', h('span', { class: 'muted now' }, last ? `instances ${bytes(last.instances.memoryBytes)} · corral ${bytes(last.server.memoryBytes)}` : '')),
      lineChart(mem, { title: 'Server memory', label: bytes, max: last?.host.memoryTotalBytes }), legend(mem));
  }

  render(main, h('h1', {}, 'Server'),
    h('p', { class: 'muted' }, `A sample every ${stats.intervalSeconds} s, the last ${Math.round(stats.keepSeconds / 60)} min; 100 % = one core.`),
    now, h('div', { class: 'grid charts' }, cpuBox, memBox));
  draw();
  return liveEvents({
    stats: (tick) => {
      if (!tick.server) return;
      samples.push(tick.server);
      keepLast(samples, cap);
      draw();
    },
  });
}
