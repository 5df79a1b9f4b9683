// The server over real HTTP on loopback, with OpenAI's official client (the `openai` npm package,
// version 5) where a client would use it, and plain fetch where a client would not.
//
//   node openai_test.mjs CASE      CASE: one of the keys of `cases` below
//
// Environment: SEMLINE_BIN (the semline executable), SEMLINE_MODELS (the models folder),
// SEMLINE_REQUIRE (with "openai", a missing client fails instead of skipping).
import { spawn, execFileSync } from 'node:child_process';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const bin = process.env.SEMLINE_BIN;
const models = process.env.SEMLINE_MODELS;
const stories = path.join(models, 'gguf', 'stories260K.gguf');
const story = ', there was a little girl named Lily. She loved to play outside in the park.';

function skip(why) {
  const required = (process.env.SEMLINE_REQUIRE || '').split(/[ ,]/).includes('openai');
  if (required) {
    console.error(`FAIL: SEMLINE_REQUIRE names openai, but this test cannot run: ${why}`);
    process.exit(1);
  }
  console.log(`SKIPPED (needs openai): ${why}`);
  process.exit(0);
}

let OpenAI;
try {
  OpenAI = (await import('openai')).default;
} catch {
  skip('the openai npm package is not installed (npm ci --prefix tests/serve)');
}

// Starts `semline serve` on a free port; resolves once it listens.
async function serve(args, { env = {} } = {}) {
  const proc = spawn(bin, ['serve', '--port', '0', ...args], { env: { ...process.env, ...env } });
  let out = '', err = '';
  proc.stderr.on('data', (d) => { err += d; });
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`semline serve did not start:\n${out}\n${err}`)), 30000);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    proc.on('exit', (code) => reject(new Error(`semline serve exited with ${code}:\n${out}\n${err}`)));
  });
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    client: new OpenAI({ baseURL: `${url}/v1`, apiKey: 'none', maxRetries: 0, timeout: 60000 }),
    stderr: () => err,
    async stop() {
      proc.kill('SIGTERM');
      const r = await exited;
      if (r.code !== 0) console.error(`semline serve ended with ${r.code ?? r.signal}:\n${err}`);
      return r;
    },
    exited,
  };
}

const config = (extra = '') => {
  const file = path.join(os.tmpdir(), `semline-serve-${process.pid}-${Math.random().toString(36).slice(2)}.toml`);
  fs.writeFileSync(file, `[model]\npath = "${stories}"\n[runtime]\nthreads = 2\ncontext = 512\n${extra}`);
  return file;
};

async function post(url, route, body, headers = {}) {
  const res = await fetch(url + route, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, json, text };
}

function assertError(r, status, param) {
  assert.equal(r.status, status, `status of ${r.text}`);
  assert.ok(r.json && r.json.error, `OpenAI's error shape: ${r.text}`);
  assert.equal(typeof r.json.error.message, 'string');
  assert.equal(typeof r.json.error.type, 'string');
  assert.ok('code' in r.json.error && 'param' in r.json.error);
  if (param) assert.equal(r.json.error.param, param);
}

async function metric(url, name) {
  const text = await (await fetch(url + '/metrics')).text();
  const m = text.match(new RegExp(`^semline:${name}\\{variant="default"\\} (\\S+)$`, 'm'));
  return m ? Number(m[1]) : NaN;
}

async function streamText(stream) {
  let text = '', usage = null, finish = null, first = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      if (first === null) first = c;
      text += c.delta ? (c.delta.content ?? '') : c.text;
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  return { text, usage, finish, first };
}

const cases = {
  async completions() {
    const s = await serve(['-c', config()]);
    try {
      const models = await s.client.models.list();
      assert.deepEqual(models.data.map((m) => m.id), ['stories260K']);
      const r = await s.client.completions.create({ model: 'stories260K', prompt: 'Once upon a time', max_tokens: 24 });
      assert.ok(r.choices[0].text.startsWith(story.slice(0, 60)), r.choices[0].text);
      assert.equal(r.object, 'text_completion');
      assert.equal(r.choices[0].finish_reason, 'length');
      assert.equal(r.usage.prompt_tokens, 5);
      assert.equal(r.usage.completion_tokens, 24);
      assert.equal(r.usage.total_tokens, 29);
      // Token ids as the prompt, and a batch of prompts: one choice each.
      const ids = (await post(s.url, '/tokenize', { content: 'Once upon a time', add_special: true })).json.tokens;
      assert.deepEqual(ids, [1, 403, 407, 261, 378]);
      // Control tokens written in the text are read as such unless parse_special is false.
      const eos = (await post(s.url, '/tokenize', { content: '</s>Once' })).json.tokens;
      assert.deepEqual(eos, [2, 403]);
      const plain = (await post(s.url, '/tokenize', { content: '</s>Once', parse_special: false })).json.tokens;
      assert.equal(plain.length, 8);
      const badFlag = await post(s.url, '/tokenize', { content: 'x', parse_special: 'yes' });
      assert.equal(badFlag.status, 400);
      assert.equal(badFlag.json.error.param, 'parse_special');
      const byIds = await s.client.completions.create({ model: 'stories260K', prompt: ids, max_tokens: 24 });
      assert.equal(byIds.choices[0].text, r.choices[0].text);
      const batch = await s.client.completions.create({ model: 'stories260K', prompt: ['Once upon a time', 'The dog'], max_tokens: 8 });
      assert.equal(batch.choices.length, 2);
      assert.deepEqual(batch.choices.map((c) => c.index), [0, 1]);
      assert.equal(batch.choices[0].text, r.choices[0].text.slice(0, batch.choices[0].text.length));
      const text = (await post(s.url, '/detokenize', { tokens: ids.slice(1) })).json.content;
      assert.equal(text, ' Once upon a time');
      // Stop strings end the text before them.
      const stopped = await s.client.completions.create({ model: 'stories260K', prompt: 'Once upon a time', max_tokens: 50, stop: ['Lily'] });
      assert.equal(stopped.choices[0].text, ', there was a little girl named ');
      assert.equal(stopped.choices[0].finish_reason, 'stop');
    } finally {
      assert.equal((await s.stop()).code, 0);
    }
  },

  async chat() {
    const s = await serve(['-c', config()]);
    try {
      const r = await s.client.chat.completions.create({
        model: 'stories260K', messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 20,
      });
      assert.equal(r.object, 'chat.completion');
      assert.equal(r.choices[0].message.role, 'assistant');
      assert.ok(r.choices[0].message.content.startsWith(', there was a little girl'), r.choices[0].message.content);
      assert.equal(r.usage.completion_tokens, 20);
      // Without max_tokens a chat answer runs to the context's end or its own.
      const long = await s.client.chat.completions.create({
        model: 'stories260K', messages: [{ role: 'user', content: [{ type: 'text', text: 'Once upon a time' }] }],
      });
      assert.ok(long.usage.completion_tokens > 100, JSON.stringify(long.usage));
    } finally {
      assert.equal((await s.stop()).code, 0);
    }
  },

  async streaming() {
    const s = await serve(['-c', config()]);
    try {
      const plain = await s.client.chat.completions.create({
        model: 'stories260K', messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 30,
      });
      const stream = await s.client.chat.completions.create({
        model: 'stories260K', messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 30,
        stream: true, stream_options: { include_usage: true },
      });
      const got = await streamText(stream);
      assert.equal(got.text, plain.choices[0].message.content);
      assert.equal(got.first.delta.role, 'assistant');
      assert.equal(got.finish, 'length');
      assert.deepEqual(got.usage, plain.usage);
      const cstream = await s.client.completions.create({ model: 'stories260K', prompt: 'Once upon a time', max_tokens: 12, stream: true });
      const cgot = await streamText(cstream);
      assert.equal(cgot.usage, null);  // not asked for
      assert.ok(story.startsWith(cgot.text), cgot.text);
    } finally {
      assert.equal((await s.stop()).code, 0);
    }
  },

  async n_and_logprobs() {
    const s = await serve(['-c', config()]);
    try {
      const r = await s.client.completions.create({
        model: 'stories260K', prompt: 'Once upon a time', max_tokens: 32, n: 3, temperature: 1.5, seed: 5, logprobs: 2,
      });
      assert.equal(r.choices.length, 3);
      assert.equal(new Set(r.choices.map((c) => c.text)).size, 3);
      for (const c of r.choices) {
        assert.equal(c.logprobs.tokens.join(''), c.text);
        assert.equal(c.logprobs.token_logprobs.length, c.logprobs.tokens.length);
        for (const lp of c.logprobs.token_logprobs) assert.ok(lp <= 0);
        for (const top of c.logprobs.top_logprobs) assert.equal(Object.keys(top).length, 2);
      }
      assert.equal(r.usage.completion_tokens, 96);
      assert.equal(r.usage.prompt_tokens, 5);
      const chat = await s.client.chat.completions.create({
        model: 'stories260K', messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 6, logprobs: true, top_logprobs: 3,
      });
      const content = chat.choices[0].logprobs.content;
      assert.equal(content.length, 6);
      for (const t of content) {
        assert.equal(t.top_logprobs.length, 3);
        assert.equal(t.top_logprobs[0].token, t.token);  // greedy takes the most likely
        assert.deepEqual(t.bytes, [...Buffer.from(t.token)]);
      }
    } finally {
      assert.equal((await s.stop()).code, 0);
    }
  },

  async concurrent_stories() {
    const s = await serve(['-c', config('max_seqs = 32\n')]);
    try {
      const prompts = Array.from({ length: 32 }, (_, i) => ['Once upon a time', 'The little dog', 'Tom and Sue', 'A big cat'][i % 4] + '.'.repeat(Math.floor(i / 4)));
      const solo = [];
      for (const p of prompts) solo.push((await s.client.completions.create({ model: 'stories260K', prompt: p, max_tokens: 40 })).choices[0].text);
      const streams = await Promise.all(prompts.map((p) => s.client.completions.create({ model: 'stories260K', prompt: p, max_tokens: 40, stream: true })));
      const texts = await Promise.all(streams.map(async (st) => (await streamText(st)).text));
      for (let i = 0; i < prompts.length; ++i) assert.equal(texts[i], solo[i], `request ${i}: ${prompts[i]}`);
    } finally {
      assert.equal((await s.stop()).code, 0);
    }
  },

  async concurrent_synthetic() {
    const model = path.join(os.tmpdir(), `semline-serve-synth-${process.pid}.gguf`);
    execFileSync(bin, ['synth', '--preset', 'tiny', '-o', model]);
    const s = await serve(['-m', model, '--set', 'runtime.max_seqs=32', '--set', 'runtime.context=256']);
    try {
      const prompts = Array.from({ length: 32 }, (_, i) => [1, 10 + i, 20 + 3 * i, 7, 99 - i]);
      const solo = [];
      for (const p of prompts) solo.push((await s.client.completions.create({ model: path.parse(model).name, prompt: p, max_tokens: 24, logprobs: 0 })).choices[0].logprobs.tokens.join('\u0001'));
      const all = await Promise.all(prompts.map((p) => s.client.completions.create({ model: path.parse(model).name, prompt: p, max_tokens: 24, logprobs: 0 })));
      for (let i = 0; i < prompts.length; ++i) assert.equal(all[i].choices[0].logprobs.tokens.join('\u0001'), solo[i], `request ${i}`);
    } finally {
      assert.equal((await s.stop()).code, 0);
      fs.rmSync(model, { force: true });
    }
  },

  async cached_tokens() {
    const s = await serve(['-c', config()]);
    try {
      const prompt = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends and her dog.';
      const first = await s.client.completions.create({ model: 'stories260K', prompt, max_tokens: 8 });
      const again = await s.client.completions.create({ model: 'stories260K', prompt, max_tokens: 8 });
      assert.equal(first.usage.prompt_tokens_details.cached_tokens, 0);
      assert.equal(again.usage.prompt_tokens_details.cached_tokens, Math.floor((again.usage.prompt_tokens - 1) / 16) * 16);
      assert.ok(again.usage.prompt_tokens_details.cached_tokens >= 16);
      assert.equal(again.choices[0].text, first.choices[0].text);
      assert.ok((await metric(s.url, 'prefix_cache_hits')) >= 16);
    } finally {
      assert.equal((await s.stop()).code, 0);
    }
  },

  async recurrent_prefix() {
    // A Mamba line: a repeated prompt continues from the state kept at its last whole block.
    const model = path.join(os.tmpdir(), `semline-serve-mamba-${process.pid}.gguf`);
    execFileSync(bin, ['synth', '--preset', 'tiny', '--arch', 'mamba', '-o', model]);
    const s = await serve(['-m', model, '--set', 'runtime.context=256']);
    try {
      const name = path.parse(model).name;
      const prompt = Array.from({ length: 40 }, (_, i) => (i === 0 ? 1 : 2 + ((i * 13 + i * i) % 500)));
      const ask = (n) => s.client.completions.create({ model: name, prompt, max_tokens: 12, n, logprobs: 0 });
      const first = await ask(1);
      const again = await ask(1);
      const two = await ask(2);
      assert.equal(first.usage.prompt_tokens_details.cached_tokens, 0);
      assert.equal(again.usage.prompt_tokens_details.cached_tokens, 32);
      const tokens = (r, i = 0) => r.choices[i].logprobs.tokens.join('\u0001');
      assert.equal(tokens(again), tokens(first));
      assert.equal(tokens(two, 0), tokens(first));
      assert.equal(tokens(two, 1), tokens(first));
      assert.ok((await metric(s.url, 'prefix_cache_hits')) >= 64);
    } finally {
      assert.equal((await s.stop()).code, 0);
      fs.rmSync(model, { force: true });
    }
  },

  async bad_input() {
    const s = await serve(['-c', config()]);
    try {
      const ok = { model: 'stories260K', prompt: 'Once', max_tokens: 4 };
      assertError(await post(s.url, '/v1/completions', '{"prompt": "Once",'), 400);
      assertError(await post(s.url, '/v1/completions', '[1, 2]'), 400);
      assertError(await post(s.url, '/v1/completions', '{"prompt": "Once", "max_tokens": 1e1111}'), 400);
      assertError(await post(s.url, '/v1/completions', { ...ok, temperature: 'hot' }), 400, 'temperature');
      assertError(await post(s.url, '/v1/completions', { ...ok, max_tokens: -5 }), 400, 'max_tokens');
      assertError(await post(s.url, '/v1/completions', { ...ok, n: 100000 }), 400, 'n');
      assertError(await post(s.url, '/v1/completions', { ...ok, top_p: 7 }), 400, 'top_p');
      assertError(await post(s.url, '/v1/completions', { ...ok, logit_bias: { abc: 1 } }), 400, 'logit_bias.abc');
      assertError(await post(s.url, '/v1/completions', { ...ok, max_tokens: 100000 }), 400, 'max_tokens');
      assertError(await post(s.url, '/v1/completions', { ...ok, prompt: 'Once upon a time '.repeat(200) }), 400);
      assertError(await post(s.url, '/v1/completions', { ...ok, prompt: [1, 99999] }), 400);
      assertError(await post(s.url, '/v1/completions', { model: 'stories260K' }), 400, 'prompt');
      assertError(await post(s.url, '/v1/chat/completions', { messages: [] }), 400, 'messages');
      assertError(await post(s.url, '/v1/chat/completions', { messages: [{ role: 'wizard', content: 'x' }] }), 400, 'messages[0].role');
      assertError(await post(s.url, '/v1/completions', { ...ok, model: 'gpt-9' }), 404, 'model');
      assertError(await post(s.url, '/v1/completions', JSON.stringify({ ...ok, prompt: 'x'.repeat(9 << 20) })), 413);
      assertError(await post(s.url, '/v1/nothing', ok), 404);
      // Through the client: its error carries the status and the message.
      await assert.rejects(s.client.completions.create({ ...ok, model: 'gpt-9' }), (e) => e.status === 404 && /gpt-9/.test(e.message));
      // The server still serves.
      assert.equal((await post(s.url, '/v1/completions', ok)).status, 200);
      const text = await (await fetch(s.url + '/metrics')).text();
      const errors = text.match(/^semline:request_errors_total\{code="400",variant="default"\} (\d+)$/m);
      assert.ok(errors && Number(errors[1]) >= 12, text);
    } finally {
      assert.equal((await s.stop()).code, 0);
    }
    // An API key: missing or wrong is 401, right is served.
    const k = await serve(['-c', config(), '--api-key', 'sesame']);
    try {
      const body = { model: 'stories260K', prompt: 'Once', max_tokens: 2 };
      assertError(await post(k.url, '/v1/completions', body), 401);
      assertError(await post(k.url, '/v1/completions', body, { Authorization: 'Bearer wrong' }), 401);
      assert.equal((await post(k.url, '/v1/completions', body, { Authorization: 'Bearer sesame' })).status, 200);
      const client = new OpenAI({ baseURL: `${k.url}/v1`, apiKey: 'sesame', maxRetries: 0 });
      assert.equal((await client.completions.create(body)).choices.length, 1);
    } finally {
      assert.equal((await k.stop()).code, 0);
    }
    // A full queue: one running, none may wait.
    const q = await serve(['-c', config(), '--parallel', '1', '--max-queue', '0']);
    try {
      const busy = q.client.completions.create({ model: 'stories260K', prompt: 'Once upon a time', max_tokens: 400, ignore_eos: true, stream: true });
      const st = await busy;
      const it = st[Symbol.asyncIterator]();
      await it.next();  // it runs
      const r = await post(q.url, '/v1/completions', { model: 'stories260K', prompt: 'Once', max_tokens: 2 });
      assertError(r, 503);
      assert.equal(r.headers.get('retry-after'), '1');
      st.controller.abort();
    } finally {
      assert.equal((await q.stop()).code, 0);
    }
  },

  async cancel() {
    const s = await serve(['-c', config()]);
    try {
      const stream = await s.client.completions.create({ model: 'stories260K', prompt: 'Once upon a time', max_tokens: 450, ignore_eos: true, stream: true });
      let chunks = 0;
      for await (const chunk of stream) {
        if (++chunks === 5) break;  // leaving the loop aborts the request
      }
      let running = NaN, usage = NaN;
      for (let i = 0; i < 100; ++i) {
        running = await metric(s.url, 'num_requests_running');
        usage = await metric(s.url, 'kv_cache_usage_perc');
        if (running === 0 && usage === 0) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(running, 0);
      assert.equal(usage, 0);
      assert.ok((await metric(s.url, 'generation_tokens_total')) < 450);
    } finally {
      assert.equal((await s.stop()).code, 0);
    }
  },

  async live_ab() {
    const file = config('[[serve.variants]]\nname = "f32"\nshare = 1\nset = ["kv_cache.dtype=f32"]\n' +
                        '[[serve.variants]]\nname = "f16"\nshare = 3\nset = ["kv_cache.dtype=f16"]\n');
    const s = await serve(['-c', file]);
    try {
      const body = { model: 'stories260K', prompt: 'Once upon a time', max_tokens: 4 };
      const seen = { f32: 0, f16: 0 };
      for (let i = 0; i < 40; ++i) {
        const r = await post(s.url, '/v1/completions', body);
        assert.equal(r.status, 200);
        seen[r.headers.get('x-semline-variant')] += 1;
      }
      assert.equal(seen.f32 + seen.f16, 40);
      assert.ok(seen.f16 > seen.f32 && seen.f32 > 0, JSON.stringify(seen));  // shares 1 : 3
      const named = await post(s.url, '/v1/completions', body, { 'X-Semline-Variant': 'f32' });
      assert.equal(named.headers.get('x-semline-variant'), 'f32');
      assertError(await post(s.url, '/v1/completions', body, { 'X-Semline-Variant': 'f8' }), 400);
      const text = await (await fetch(s.url + '/metrics')).text();
      const count = (v) => Number(text.match(new RegExp(`^semline:request_success_total\\{finished_reason="length",variant="${v}"\\} (\\d+)$`, 'm'))[1]);
      assert.equal(count('f32'), seen.f32 + 1);
      assert.equal(count('f16'), seen.f16);
      assert.match(text, /^semline:time_to_first_token_seconds_count\{variant="f16"\} \d+$/m);
    } finally {
      assert.equal((await s.stop()).code, 0);
    }
  },

  // Drafts verified in the server's batched steps: each stream's text is the plain server's.
  async speculative() {
    const prompts = ['Once upon a time', 'The little dog', 'Lily had a red ball', 'Ben wanted to fly',
      'The sun was hot', 'Mom said no', 'A girl named Mia', 'The boat was small'].map((p) => `${p}. ${p}.`);
    const texts = async (s) => Promise.all(prompts.map(async (prompt, i) => (await streamText(
      await s.client.completions.create({ model: 'stories260K', prompt, max_tokens: 48, stream: true, temperature: i % 2 ? 0 : 0.8, seed: i }),
    )).text));
    const plain = await serve(['-c', config()]);
    let expected;
    try {
      expected = await texts(plain);
      assert.equal(await metric(plain.url, 'spec_decode_num_drafts'), 0);
    } finally {
      assert.equal((await plain.stop()).code, 0);
    }
    // The ngram proposer, then a draft model (the model itself: its drafts are nearly all kept).
    for (const flags of [['--spec', 'ngram', '--spec-k', '6'], ['--draft', stories, '--spec-k', '3']]) {
      const s = await serve(['-c', config(), ...flags]);
      try {
        assert.deepEqual(await texts(s), expected, flags.join(' '));
        const drafted = await metric(s.url, 'spec_decode_num_draft_tokens');
        const accepted = await metric(s.url, 'spec_decode_num_accepted_tokens');
        assert.ok(await metric(s.url, 'spec_decode_num_drafts') > 0);
        assert.ok(accepted > 0 && accepted <= drafted, `${flags[0]}: ${accepted} of ${drafted}`);
      } finally {
        assert.equal((await s.stop()).code, 0);
      }
    }
  },

  async sigterm() {
    const s = await serve(['-c', config()]);
    const stream = await s.client.completions.create({ model: 'stories260K', prompt: 'Once upon a time', max_tokens: 450, ignore_eos: true, stream: true });
    const it = stream[Symbol.asyncIterator]();
    await it.next();
    const stopped = s.stop();
    let finish = null;
    try {
      for (let c = await it.next(); !c.done; c = await it.next()) finish = c.value.choices[0]?.finish_reason ?? finish;
    } catch {
      finish = 'closed';
    }
    const { code } = await stopped;
    assert.equal(code, 0);
    assert.ok(finish === 'abort' || finish === 'closed' || finish === 'length', String(finish));
  },
};

const name = process.argv[2];
if (!cases[name]) {
  console.error(`usage: node openai_test.mjs CASE; cases: ${Object.keys(cases).join(', ')}`);
  process.exit(2);
}
try {
  await cases[name]();
  console.log(`${name}: passed`);
} catch (e) {
  console.error(`${name}: FAILED`);
  console.error(e);
  process.exit(1);
}
