// openai_check.mjs: drives a running `minnow serve` with the official `openai` npm client
// (run by tests/server/openai_client.sh; not a test by itself).
// Env: BASE (http://127.0.0.1:PORT), KEY (the server's --api-key), OPENAI_MODULE (path of the
// package's index.mjs). Prints one line per check; exits 1 if any failed.
import { pathToFileURL } from 'node:url';

const OpenAI = (await import(pathToFileURL(process.env.OPENAI_MODULE).href)).default;
const BASE = process.env.BASE;
const client = new OpenAI({ baseURL: `${BASE}/v1`, apiKey: process.env.KEY, maxRetries: 0, timeout: 60000 });
let fails = 0;
function check(what, cond, detail = '') {
  if (cond) console.log(`ok: ${what}`);
  else {
    fails++;
    console.log(`FAIL: ${what} ${detail}`);
  }
}
async function expectError(what, fn, status, param) {
  try {
    await fn();
    check(what, false, '(no error thrown)');
  } catch (e) {
    const good = e instanceof OpenAI.APIError && e.status === status && (param === undefined || e.param === param);
    check(`${what}: ${e.constructor.name} ${e.status} param=${e.param}`, good, String(e.message).slice(0, 200));
  }
}
async function metric(name) {
  const t = await (await fetch(`${BASE}/metrics`, { headers: { Authorization: `Bearer ${process.env.KEY}` } })).text();
  const line = t.split('\n').find((l) => l.startsWith(name + ' '));
  return line ? Number(line.split(' ')[1]) : NaN;
}
const model = (await client.models.list()).data[0]?.id;
check(`models.list gives an id (${model})`, typeof model === 'string' && model.length > 0);

// ---- chat, non-stream
const msgs = [
  { role: 'system', content: 'You tell short stories.' },
  { role: 'user', content: 'Tell me a story about a cat.' },
];
const c1 = await client.chat.completions.create({ model, messages: msgs, max_tokens: 24, temperature: 0 });
check('chat.completions.create: object, role, content, finish_reason',
  c1.object === 'chat.completion' && c1.choices[0].message.role === 'assistant' &&
  typeof c1.choices[0].message.content === 'string' && ['stop', 'length'].includes(c1.choices[0].finish_reason));
check('chat usage counts', c1.usage.prompt_tokens > 0 && c1.usage.completion_tokens > 0 &&
  c1.usage.total_tokens === c1.usage.prompt_tokens + c1.usage.completion_tokens);

// ---- chat, stream: same text as non-stream, usage chunk, cached tokens on the repeat
const s1 = await client.chat.completions.create({ model, messages: msgs, max_tokens: 24, temperature: 0, stream: true,
  stream_options: { include_usage: true } });
let text = '', usage = null, finish = null, chunks = 0;
for await (const ch of s1) {
  chunks++;
  if (ch.usage) usage = ch.usage;
  for (const c of ch.choices) {
    text += c.delta?.content ?? '';
    if (c.finish_reason) finish = c.finish_reason;
  }
}
check(`chat stream text equals non-stream text (${chunks} chunks)`, text === c1.choices[0].message.content,
  JSON.stringify([text, c1.choices[0].message.content]));
check('chat stream finish_reason and usage chunk', finish === c1.choices[0].finish_reason && usage?.completion_tokens === c1.usage.completion_tokens);
check(`repeat prompt: prompt_tokens_details.cached_tokens > 0 (${usage?.prompt_tokens_details?.cached_tokens})`,
  usage?.prompt_tokens_details?.cached_tokens > 0);

// ---- completions, non-stream and stream
const p1 = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 20, temperature: 0 });
check('completions.create text_completion', p1.object === 'text_completion' && p1.choices[0].text.length > 0);
const s2 = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 20, temperature: 0, stream: true });
let t2 = '';
for await (const ch of s2) t2 += ch.choices[0]?.text ?? '';
check('completions stream equals non-stream', t2 === p1.choices[0].text, JSON.stringify([t2, p1.choices[0].text]));

// ---- stop sequences: never emitted
const full = p1.choices[0].text;
const stopStr = full.slice(4, 7);
if (stopStr.length === 3) {
  const p2 = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 20, temperature: 0, stop: [stopStr] });
  check(`stop ${JSON.stringify(stopStr)}: output is the text before it, finish_reason stop`,
    p2.choices[0].text === full.slice(0, full.indexOf(stopStr)) && p2.choices[0].finish_reason === 'stop',
    JSON.stringify(p2.choices[0]));
  const s3 = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 20, temperature: 0, stop: stopStr, stream: true });
  let t3 = '';
  for await (const ch of s3) t3 += ch.choices[0]?.text ?? '';
  check('streamed stop text never sent', t3 === full.slice(0, full.indexOf(stopStr)), JSON.stringify(t3));
} else check('greedy text long enough for the stop test', false);

// ---- n > 1, seeds
const n3 = await client.chat.completions.create({ model, messages: msgs, max_tokens: 16, temperature: 1, n: 3, seed: 99 });
check('n=3 gives 3 choices', n3.choices.length === 3 && n3.choices.map((c) => c.index).join() === '0,1,2');
const n3b = await client.chat.completions.create({ model, messages: msgs, max_tokens: 16, temperature: 1, n: 3, seed: 99 });
check('same seed: same 3 outputs', JSON.stringify(n3.choices.map((c) => c.message.content)) ===
  JSON.stringify(n3b.choices.map((c) => c.message.content)));
const other = await client.chat.completions.create({ model, messages: msgs, max_tokens: 16, temperature: 1, seed: 100 });
check('another seed: another output', other.choices[0].message.content !== n3.choices[0].message.content);
const ns = await client.chat.completions.create({ model, messages: msgs, max_tokens: 8, n: 2, seed: 5, stream: true });
const seen = new Set();
for await (const ch of ns) for (const c of ch.choices) seen.add(c.index);
check('streamed n=2 has both indexes', seen.has(0) && seen.has(1));

// ---- logprobs
const lp = await client.chat.completions.create({ model, messages: msgs, max_tokens: 6, temperature: 0, logprobs: true, top_logprobs: 4 });
const content = lp.choices[0].logprobs?.content ?? [];
check(`chat logprobs: ${content.length} entries with 4 alternatives`, content.length === lp.usage.completion_tokens &&
  content.every((t) => t.logprob <= 0 && t.top_logprobs.length === 4 && Array.isArray(t.bytes)));
check('greedy token is the top alternative', content.every((t) => t.top_logprobs[0].logprob === t.logprob));
const clp = await client.completions.create({ model, prompt: 'Once', max_tokens: 5, temperature: 0, logprobs: 3 });
check('completion logprobs arrays', clp.choices[0].logprobs.tokens.length === 5 && clp.choices[0].logprobs.top_logprobs.length === 5);

// ---- errors through the client's typed exceptions
await expectError('temperature -1', () => client.chat.completions.create({ model, messages: msgs, temperature: -1 }), 400, 'temperature');
await expectError('unknown role', () => client.chat.completions.create({ model, messages: [{ role: 'wizard', content: 'x' }] }), 400, 'messages[0].role');
await expectError('empty messages', () => client.chat.completions.create({ model, messages: [] }), 400, 'messages');
await expectError('max_tokens 0', () => client.completions.create({ model, prompt: 'x', max_tokens: 0 }), 400, 'max_tokens');
await expectError('n too large', () => client.completions.create({ model, prompt: 'x', n: 1000 }), 400, 'n');
await expectError('top_logprobs 50', () => client.chat.completions.create({ model, messages: msgs, logprobs: true, top_logprobs: 50 }), 400, 'top_logprobs');
await expectError('context overflow', () => client.completions.create({ model, prompt: 'x', max_tokens: 100000 }), 400, 'max_tokens');
await expectError('out-of-vocabulary prompt id', () => client.completions.create({ model, prompt: [1, 99999999] }), 400, 'prompt');
const bad = new OpenAI({ baseURL: `${BASE}/v1`, apiKey: 'wrong-key', maxRetries: 0 });
await expectError('wrong API key', () => bad.models.list(), 401);

// ---- disconnect mid-stream: abort after a few chunks; the server cancels the sequence. The
// stream is 4000 tokens with end-of-text (id 2) banned, seconds of work even on an idle machine,
// so it surely is still running when the abort arrives; the waits poll for up to 60 s.
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function pollUntil(fn, secs) {
  const t0 = Date.now();
  let v = await fn();
  while (!v.done && Date.now() - t0 < secs * 1000) {
    await sleep(50);
    v = await fn();
  }
  return v.value;
}
const before = await metric('minnow_cancelled_sequences_total');
const ac = new AbortController();
const s4 = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 4000, temperature: 0, stream: true,
  logit_bias: { 2: -100 } }, { signal: ac.signal });
let got = 0;
try {
  for await (const ch of s4) {
    if (++got === 3) ac.abort();
  }
} catch (e) { /* AbortError is expected */ }
const after = await pollUntil(async () => {
  const v = await metric('minnow_cancelled_sequences_total');
  return { done: v > before, value: v };
}, 60);
check(`aborted stream cancelled on the server (${before} -> ${after})`, after === before + 1);
const running = await pollUntil(async () => {
  const v = await metric('minnow_running_sequences');
  return { done: v === 0, value: v };
}, 60);
check('no sequence left running', running === 0);

console.log(fails ? `${fails} check(s) failed` : 'all openai client checks passed');
process.exit(fails ? 1 : 0);
