// serve_load.mjs: load generator for `minnow serve` (loopback only, bounded duration, no deps).
//
// Usage: node bench/serve_load.mjs --base http://127.0.0.1:PORT [--clients N] [--seconds S]
//          [--max-tokens M] [--key KEY] [--json]
//        node bench/serve_load.mjs --base URL --prefix-test [--prefix-tokens 1000] [--key KEY]
//
// Load mode: N clients, each a keep-alive connection that sends streaming chat completions back to
// back for S seconds (a request in flight at the deadline is finished and counted). Each client's
// prompts differ (a story request with the client and request number), temperature 0.8, so the
// prefix cache only helps with the shared template prefix. Measured on the client side:
//   aggregate generated tokens / wall seconds (tokens from each response's usage),
//   TTFT = request sent -> first chunk with content; ITL = gaps between content chunks
//   (one chunk carries one token unless the client falls behind and chunks coalesce; the
//   count of chunks vs tokens is reported), p50/p99 of both; errors (any failure other
//   than the intended 503 queue_full) and 503s separately.
// Prefix mode: one cold request with a long system prompt (~prefix-tokens tokens), then 5 warm
// requests sharing that system prompt with different user messages, max_tokens 1, sequentially:
// reports TTFT cold vs warm median and the cached_tokens the server reported.
import http from 'node:http';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const BASE = new URL(opt('--base', 'http://127.0.0.1:8080'));
if (!['127.0.0.1', 'localhost', '[::1]'].includes(BASE.hostname)) {
  console.error('serve_load: loopback targets only');
  process.exit(2);
}
const KEY = opt('--key', null);
const JSON_OUT = args.includes('--json');

function post(agent, path, body, onChunk) {
  return new Promise((resolve) => {
    const data = JSON.stringify(body);
    const headers = { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) };
    if (KEY) headers.Authorization = `Bearer ${KEY}`;
    const req = http.request({ host: BASE.hostname, port: BASE.port, path, method: 'POST', agent, headers }, (res) => {
      let buf = '';
      let all = '';
      res.setEncoding('utf8');
      res.on('data', (d) => {
        if (res.statusCode !== 200) { all += d; return; }
        buf += d;
        let k;
        while ((k = buf.indexOf('\n\n')) >= 0) {
          const ev = buf.slice(0, k);
          buf = buf.slice(k + 2);
          if (ev.startsWith('data: ')) onChunk(ev.slice(6));
        }
        all += '';
      });
      res.on('end', () => resolve({ status: res.statusCode, body: all }));
      res.on('error', (e) => resolve({ status: 0, body: String(e) }));
    });
    req.on('error', (e) => resolve({ status: 0, body: String(e) }));
    req.end(data);
  });
}

function pct(a, p) {
  if (!a.length) return NaN;
  const s = [...a].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
}

async function streamOnce(agent, body) {
  const t0 = performance.now();
  let tFirst = -1, tLast = -1, chunks = 0, tokens = 0, cached = 0, error = null, done = false;
  const gaps = [];
  const r = await post(agent, '/v1/chat/completions', body, (data) => {
    if (data === '[DONE]') { done = true; return; }
    let j;
    try { j = JSON.parse(data); } catch { error = 'bad JSON chunk'; return; }
    if (j.error) { error = j.error.message; return; }
    if (j.usage) { tokens = j.usage.completion_tokens; cached = j.usage.prompt_tokens_details?.cached_tokens ?? 0; }
    const c = j.choices?.[0];
    if (c && c.delta && c.delta.content) {
      const t = performance.now();
      if (tFirst < 0) tFirst = t;
      else gaps.push(t - tLast);
      tLast = t;
      chunks++;
    }
  });
  if (r.status !== 200) return { status: r.status, body: r.body };
  if (!done && !error) error = 'stream ended without [DONE]';
  return { status: 200, error, ttft: tFirst >= 0 ? tFirst - t0 : NaN, gaps, tokens, chunks, cached };
}

async function load() {
  const clients = Number(opt('--clients', '1'));
  const seconds = Number(opt('--seconds', '10'));
  const maxTokens = Number(opt('--max-tokens', '64'));
  const deadline = performance.now() + seconds * 1000;
  const ttft = [], itl = [];
  let tokens = 0, chunks = 0, requests = 0, errors = 0, busy = 0;
  const errorSamples = [];
  const t0 = performance.now();
  await Promise.all(Array.from({ length: clients }, async (_, ci) => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    for (let k = 0; performance.now() < deadline; k++) {
      const body = {
        messages: [{ role: 'user', content: `Client ${ci} request ${k}: tell me a story about a dog named ${ci * 1000 + k}.` }],
        max_tokens: maxTokens, temperature: 0.8, seed: ci * 100000 + k, stream: true,
        stream_options: { include_usage: true },
      };
      const r = await streamOnce(agent, body);
      requests++;
      if (r.status === 503) { busy++; await new Promise((res) => setTimeout(res, 200)); continue; }
      if (r.status !== 200 || r.error) {
        errors++;
        if (errorSamples.length < 3) errorSamples.push(`${r.status} ${r.error ?? r.body}`.slice(0, 200));
        continue;
      }
      tokens += r.tokens;
      chunks += r.chunks;
      if (!Number.isNaN(r.ttft)) ttft.push(r.ttft);
      itl.push(...r.gaps);
    }
    agent.destroy();
  }));
  const wall = (performance.now() - t0) / 1000;
  const res = {
    clients, seconds: +wall.toFixed(2), requests, generated_tokens: tokens, content_chunks: chunks,
    tok_per_s: +(tokens / wall).toFixed(1),
    ttft_p50_ms: +pct(ttft, 50).toFixed(1), ttft_p99_ms: +pct(ttft, 99).toFixed(1),
    itl_p50_ms: +pct(itl, 50).toFixed(2), itl_p99_ms: +pct(itl, 99).toFixed(2),
    errors, busy_503: busy, error_samples: errorSamples,
  };
  if (JSON_OUT) console.log(JSON.stringify(res));
  else console.log(res);
}

async function prefixTest() {
  const n = Number(opt('--prefix-tokens', '1000'));
  // about one token per word for common English words
  const words = 'the cat sat on a mat and looked at the big red dog that ran in the park with a ball'.split(' ');
  let sys = 'You are a helpful assistant. Background: ';
  for (let i = 0; i < n; i++) sys += words[i % words.length] + ' ';
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const one = async (user) => streamOnce(agent, {
    messages: [{ role: 'system', content: sys }, { role: 'user', content: user }],
    max_tokens: 1, temperature: 0, stream: true, stream_options: { include_usage: true },
  });
  const cold = await one('Question number zero?');
  if (cold.ttft === undefined) { /* e.g. 400: the prompt does not fit the server's context (-c) */
    console.log(JSON.stringify({ prefix_words: n, error: `cold request failed: ${cold.status} ${cold.error ?? cold.body ?? ''}`.slice(0, 300) }));
    agent.destroy();
    return;
  }
  const warm = [];
  const cachedWarm = [];
  for (let i = 1; i <= 5; i++) {
    const r = await one(`Question number ${i}, a different one?`);
    warm.push(r.ttft);
    cachedWarm.push(r.cached);
  }
  agent.destroy();
  const res = {
    prefix_words: n, cold_ttft_ms: +cold.ttft.toFixed(1), cold_cached_tokens: cold.cached,
    warm_ttft_ms: warm.map((x) => +x.toFixed(1)), warm_cached_tokens: cachedWarm,
    speedup_median: +(cold.ttft / pct(warm, 50)).toFixed(1),
    errors: [cold, ...warm].filter((r) => r.error).length,
  };
  if (JSON_OUT) console.log(JSON.stringify(res));
  else console.log(res);
}

if (args.includes('--prefix-test')) await prefixTest();
else await load();
