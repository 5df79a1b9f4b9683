// A soak of `semline serve`: N streaming clients for a while, prompts and lengths mixed, some
// clients cancelling mid-stream; the server's resident memory sampled throughout.
//
//   node tests/serve/soak.mjs [--seconds 600] [--clients 64] [-- SERVE ARGS...]
//
// Environment: SEMLINE_BIN, SEMLINE_MODELS (as openai_test.mjs). Prints one line per sample and a
// summary; exits 1 on any failed request (an error status, a stream that broke without our
// cancelling it) or when the resident memory of the last third grew more than 10% over the
// middle third's.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const seconds = opt('--seconds', 600), clients = opt('--clients', 64);
const extra = args.includes('--') ? args.slice(args.indexOf('--') + 1) : [];
const bin = process.env.SEMLINE_BIN;
const model = path.join(process.env.SEMLINE_MODELS, 'gguf', 'stories260K.gguf');

const proc = spawn(bin, ['serve', '-m', model, '--port', '0', '--parallel', '32', '--max-queue', '64',
  '--set', 'runtime.context=1024', ...extra]);
let out = '';
const port = await new Promise((resolve, reject) => {
  proc.stdout.on('data', (d) => {
    out += d;
    const m = out.match(/on http:\/\/127\.0\.0\.1:(\d+)/);
    if (m) resolve(Number(m[1]));
  });
  proc.on('exit', (code) => reject(new Error(`semline serve exited with ${code}`)));
});
const url = `http://127.0.0.1:${port}/v1/completions`;
const rss = () => Number(fs.readFileSync(`/proc/${proc.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]) / 1024;

const words = ['the', 'little', 'dog', 'ran', 'to', 'a', 'big', 'tree', 'and', 'saw', 'bird', 'sun', 'Lily', 'Tom'];
let seed = 12345;
const rand = (n) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % n; };

const stats = { ok: 0, cancelled: 0, failed: 0, tokens: 0, busy: 0, firstFailure: null };
const end = Date.now() + seconds * 1000;

async function client() {
  while (Date.now() < end) {
    const n = 1 + rand(120);
    const prompt = Array.from({ length: n }, () => words[rand(words.length)]).join(' ');
    const cancelAfter = rand(5) === 0 ? 1 + rand(20) : -1;  // a fifth cancel after a few chunks
    const ctl = new AbortController();
    try {
      const res = await fetch(url, {
        method: 'POST', signal: ctl.signal, headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ prompt, max_tokens: 8 + rand(300), temperature: rand(2) ? 0 : 0.9, stream: true }),
      });
      if (res.status === 503) { stats.busy++; await new Promise((r) => setTimeout(r, 200)); continue; }
      if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
      let chunks = 0, done = false;
      const reader = res.body.getReader();
      const dec = new TextDecoder();
      let buf = '';
      for (;;) {
        const { value, done: eof } = await reader.read();
        if (eof) break;
        buf += dec.decode(value, { stream: true });
        for (let i; (i = buf.indexOf('\n\n')) >= 0; buf = buf.slice(i + 2)) {
          const ev = buf.slice(0, i);
          if (ev === 'data: [DONE]') done = true;
          else if (ev.includes('"error"')) throw new Error(ev);
          else { chunks++; stats.tokens++; }
        }
        if (cancelAfter > 0 && chunks >= cancelAfter) { ctl.abort(); break; }
      }
      if (cancelAfter > 0 && chunks >= cancelAfter) stats.cancelled++;
      else if (done) stats.ok++;
      else throw new Error('the stream ended without [DONE]');
    } catch (e) {
      if (e.name === 'AbortError') { stats.cancelled++; continue; }
      stats.failed++;
      stats.firstFailure ??= String(e);
    }
  }
}

const samples = [];
const sampler = setInterval(() => {
  const mib = rss();
  samples.push(mib);
  console.log(`${samples.length * 10} s: ${mib.toFixed(1)} MiB resident, ${stats.ok} done, ${stats.cancelled} cancelled, ` +
              `${stats.failed} failed, ${stats.busy} busy, ${stats.tokens} tokens`);
}, 10000);
await Promise.all(Array.from({ length: clients }, client));
clearInterval(sampler);
proc.kill('SIGTERM');
const exit = await new Promise((resolve) => proc.on('exit', (code) => resolve(code)));

const third = Math.floor(samples.length / 3);
const mean = (a) => a.reduce((x, y) => x + y, 0) / Math.max(1, a.length);
const middle = mean(samples.slice(third, 2 * third)), last = mean(samples.slice(2 * third));
console.log(`summary: ${stats.ok} done, ${stats.cancelled} cancelled, ${stats.failed} failed, ${stats.busy} answered 503, ` +
            `${stats.tokens} tokens; resident ${middle.toFixed(1)} MiB (middle third) -> ${last.toFixed(1)} MiB (last third); ` +
            `server exit ${exit}`);
if (stats.firstFailure) console.log(`first failure: ${stats.firstFailure}`);
const flat = samples.length < 3 || last <= middle * 1.1;
process.exit(stats.failed === 0 && flat && exit === 0 ? 0 : 1);
