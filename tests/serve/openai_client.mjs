// slua serve driven by the official OpenAI Node client and by the raw requests
// lm-evaluation-harness sends (docs/spec/serve.md §5, §12). Run by tests/lua/test_serve.lua:
//   SLUA_BASE=http://127.0.0.1:PORT SLUA_KEY=... SLUA_EXPECT=expect.json node openai_client.mjs
// Prints "ok <case>" or "FAIL <case>: <why>" per case; exits 1 if any failed.
import OpenAI from "openai";
import http from "node:http";
import net from "node:net";
import fs from "node:fs";

const base = process.env.SLUA_BASE;
const key = process.env.SLUA_KEY;
const expect = JSON.parse(fs.readFileSync(process.env.SLUA_EXPECT, "utf8"));
const client = new OpenAI({ baseURL: base + "/v1", apiKey: key, maxRetries: 0 });
let failed = 0;

function assert(cond, msg) { if (!cond) throw new Error(msg); }
function eq(a, b, msg) {
  const ja = JSON.stringify(a), jb = JSON.stringify(b);
  if (ja !== jb) throw new Error(`${msg}: expected ${jb}, got ${ja}`);
}
async function test(name, fn) {
  try { await fn(); console.log("ok " + name); }
  catch (e) { failed++; console.log(`FAIL ${name}: ${e && e.stack || e}`); }
}

// A raw request: {status, headers, text, json}.
function raw(method, path, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : (typeof body === "string" ? body : JSON.stringify(body));
    const req = http.request(base + path, {
      method, headers: { authorization: "Bearer " + key, "content-type": "application/json", ...headers },
    }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c) => (text += c));
      res.on("end", () => {
        let json; try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
    });
    req.on("error", reject);
    if (data !== undefined) req.write(data);
    req.end();
  });
}

const P = expect.prompt_ids;

await test("models.list names the served model", async () => {
  const list = await client.models.list();
  eq(list.data.map((m) => m.id), ["stories260K"], "ids");
});

await test("completions from text, ids and a batch of ids: index order and usage", async () => {
  const a = await client.completions.create({ model: "stories260K", prompt: expect.prompt_text, max_tokens: 12, temperature: 0 });
  eq(a.choices[0].text, expect.greedy_text, "text prompt = slua recipes/greedy.lua");
  const b = await client.completions.create({ model: "stories260K", prompt: P, max_tokens: 12, temperature: 0 });
  eq(b.choices[0].text, expect.greedy_text, "id prompt");
  const c = await client.completions.create({ prompt: [P, expect.prompt_ids_2, P], max_tokens: 12, temperature: 0 });
  eq(c.choices.map((x) => x.index), [0, 1, 2], "indices");
  eq(c.choices[0].text, expect.greedy_text, "batch row 0 = alone");
  eq(c.choices[2].text, expect.greedy_text, "batch row 2 = alone");
  eq(c.usage.prompt_tokens, 2 * P.length + expect.prompt_ids_2.length, "prompt tokens");
  eq(c.usage.total_tokens, c.usage.prompt_tokens + c.usage.completion_tokens, "total");
});

await test("n > 1 and stop strings", async () => {
  const r = await client.completions.create({ prompt: P, max_tokens: 12, temperature: 0, n: 3 });
  eq(r.choices.map((x) => x.index), [0, 1, 2], "indices");
  for (const ch of r.choices) eq(ch.text, expect.greedy_text, "greedy choices are equal");
  const stop = expect.greedy_text.slice(5, 9);
  const s = await client.completions.create({ prompt: P, max_tokens: 12, temperature: 0, stop: [stop, "zzz", "q", "w", "</s>"] });
  eq(s.choices[0].text, expect.greedy_text.slice(0, expect.greedy_text.indexOf(stop)), "cut before the stop string");
  eq(s.choices[0].finish_reason, "stop", "finish_reason");
});

await test("seeded sampling is reproducible, alone and among other requests", async () => {
  const req = { prompt: P, max_tokens: 12, temperature: 0.8, seed: expect.seed };
  const a = await client.completions.create(req);
  eq(a.choices[0].text, expect.sample_text, "= slua recipes/sample.lua --seed");
  const busy = [];
  for (let i = 0; i < 8; i++) busy.push(client.completions.create({ prompt: expect.prompt_ids_2, max_tokens: 20, temperature: 1, seed: i }));
  const b = await client.completions.create(req);
  await Promise.all(busy);
  eq(b.choices[0].text, a.choices[0].text, "in a busy batch");
});

await test("chat: whole, streamed, and ChatCompletionStream.finalChatCompletion()", async () => {
  const msgs = [{ role: "user", content: "Tell a story" }];
  const whole = await client.chat.completions.create({ messages: msgs, max_tokens: 10, temperature: 0 });
  const text = whole.choices[0].message.content;
  eq(whole.choices[0].message.role, "assistant", "role");
  let streamed = "", chunks = 0, usage = null, lastChoices = null;
  const s = await client.chat.completions.create({ messages: msgs, max_tokens: 10, temperature: 0, stream: true,
    stream_options: { include_usage: true } });
  for await (const c of s) { chunks++; lastChoices = c.choices; if (c.usage) usage = c.usage; for (const ch of c.choices) streamed += ch.delta.content || ""; }
  eq(streamed, text, "streamed text = whole text");
  eq(lastChoices, [], "the usage chunk has no choices");
  eq(usage.completion_tokens, whole.usage.completion_tokens, "usage");
  const helpers = client.chat.completions.stream ? client.chat.completions : client.beta.chat.completions;
  const final = await helpers.stream({ messages: msgs, max_tokens: 10, temperature: 0 }).finalChatCompletion();
  eq(final.choices[0].message.content, text, "finalChatCompletion");
});

await test("logprobs: completions stream with echo, chat top_logprobs, top_logprobs alone is a 400", async () => {
  const s = await client.completions.create({ prompt: P, max_tokens: 2, temperature: 0, echo: true, logprobs: 2, stream: true });
  let text = "", tokens = [];
  for await (const c of s) { text += c.choices[0].text; if (c.choices[0].logprobs) tokens.push(...c.choices[0].logprobs.tokens); }
  assert(text.startsWith(expect.prompt_decoded), "echo starts with the prompt: " + text);
  eq(tokens.length, P.length + 2, "prompt + generated tokens");
  const c = await client.chat.completions.create({ messages: [{ role: "user", content: "Hi" }], max_tokens: 3,
    temperature: 0, logprobs: true, top_logprobs: 5 });
  const lp = c.choices[0].logprobs.content;
  eq(lp.length, 3, "one entry per token");
  for (const e of lp) {
    eq(e.top_logprobs.length, 5, "top 5");
    assert(e.top_logprobs[0].logprob === e.logprob, "greedy token is the top one");
  }
  let err;
  try { await client.chat.completions.create({ messages: [{ role: "user", content: "Hi" }], max_tokens: 1, top_logprobs: 2 }); }
  catch (e) { err = e; }
  assert(err instanceof OpenAI.BadRequestError, "BadRequestError: " + err);
  eq(err.param, "top_logprobs", "param");
});

await test("a recipe per request: DoLa as the CLI gives it, via the extension and via extra_body", async () => {
  const a = await client.completions.create({ prompt: P, max_tokens: 8, temperature: 0,
    slua: { recipe: "dola", options: { dola_layers: "high" } } });
  eq(a.choices[0].text, expect.dola_text, "= slua recipes/dola.lua --dola-layers high");
  const b = await raw("POST", "/v1/completions", { prompt: P, max_tokens: 8, temperature: 0,
    extra_body: { slua: { recipe: "dola", options: { dola_layers: "high" } } } });
  eq(b.json.choices[0].text, expect.dola_text, "extra_body");
  const sld = await client.completions.create({ prompt: P, max_tokens: 8, temperature: 0, slua: { recipe: "skiplayer_sld" } });
  eq(sld.choices[0].text, expect.sld_text, "= slua recipes/skiplayer_sld.lua");
  let err;
  try { await client.completions.create({ prompt: P, max_tokens: 2, slua: { recipe: "dola", options: { relative_top: 2 } } }); }
  catch (e) { err = e; }
  assert(err instanceof OpenAI.BadRequestError, "BadRequestError");
  eq(err.param, "slua.options.relative_top", "param");
  eq(err.message.includes("option --relative-top must be in [0, 1] (got 2)"), true, "the CLI's message: " + err.message);
  err = undefined;
  try { await client.completions.create({ prompt: P, max_tokens: 2, slua: { recipe: "no_such_recipe" } }); }
  catch (e) { err = e; }
  eq(err && err.param, "slua.recipe", "unknown recipe");
});

await test("16 different requests at once equal each run alone", async () => {
  const reqs = [];
  for (let i = 0; i < 16; i++) {
    const r = { prompt: i % 2 ? P : expect.prompt_ids_2, max_tokens: 6 + (i % 5), temperature: i % 3 ? 0.7 : 0, seed: 100 + i };
    if (i % 4 === 1) r.slua = { recipe: "dola", options: { dola_layers: "high" } };
    if (i % 4 === 3) r.slua = { recipe: "skiplayer_sld" };
    reqs.push(r);
  }
  const together = await Promise.all(reqs.map((r) => client.completions.create(r)));
  for (let i = 0; i < 16; i++) {
    const alone = await client.completions.create(reqs[i]);
    eq(together[i].choices[0].text, alone.choices[0].text, "request " + i);
  }
});

await test("errors: wrong key, unknown model, bad JSON, wrong types, unknown route, wrong method", async () => {
  const bad = new OpenAI({ baseURL: base + "/v1", apiKey: "wrong", maxRetries: 0 });
  let err;
  try { await bad.models.list(); } catch (e) { err = e; }
  assert(err instanceof OpenAI.AuthenticationError, "AuthenticationError");
  err = undefined;
  try { await client.completions.create({ model: "gpt-4o", prompt: P, max_tokens: 1 }); } catch (e) { err = e; }
  assert(err instanceof OpenAI.NotFoundError && err.code === "model_not_found", "model_not_found");
  const j = await raw("POST", "/v1/completions", "{\"prompt\": [1, 2");
  eq([j.status, j.json.error.code], [400, "invalid_json"], "bad JSON");
  const t = await raw("POST", "/v1/completions", { prompt: P, max_tokens: "ten" });
  eq([t.status, t.json.error.param], [400, "max_tokens"], "wrong type");
  const ids = await raw("POST", "/v1/completions", { prompt: [1, 99999], max_tokens: 1 });
  eq(ids.status, 400, "id out of range");
  const long = await raw("POST", "/v1/completions", { prompt: new Array(600).fill(5), max_tokens: 1 });
  eq([long.status, long.json.error.code], [400, "context_length_exceeded"], "over-long prompt");
  const r = await raw("GET", "/v2/nothing");
  eq(r.status, 404, "unknown route");
  const m = await raw("GET", "/v1/completions");
  eq([m.status, m.headers.allow], [405, "POST"], "wrong method");
  const h = await raw("GET", "/health", undefined, { authorization: "" });
  eq(h.status, 200, "health needs no key");
});

await test("lm-eval loglikelihood: echo + logprobs, max_tokens 1 and 0, alone and batched", async () => {
  for (const mt of [1, 0]) {
    const prompts = expect.loglik.map((c) => c.ids);
    const r = await raw("POST", "/v1/completions", { model: "stories260K", prompt: prompts, temperature: 0,
      max_tokens: mt, logprobs: mt ? 1 : 10, seed: 1234, echo: true });
    eq(r.status, 200, "status");
    r.json.choices.sort((a, b) => a.index - b.index);
    expect.loglik.forEach((c, i) => {
      const lp = r.json.choices[i].logprobs;
      eq(lp.tokens.length, c.ids.length + mt, "L + m entries");
      eq([lp.token_logprobs[0], lp.top_logprobs[0]], [null, null], "entry 0");
      const part = lp.token_logprobs.slice(c.ctxlen, c.ids.length);
      const sum = part.reduce((a, b) => a + b, 0);
      assert(Math.abs(sum - c.lm_score) <= 1e-5, `sum ${sum} = lm_score ${c.lm_score}`);
      for (let k = 1; k < lp.tokens.length; k++) {
        const v = lp.top_logprobs[k][lp.tokens[k]];
        assert(v === lp.token_logprobs[k], "the token's own value in top_logprobs is the same number");
      }
      eq(lp.text_offset.length, lp.tokens.length, "offsets");
    });
    const alone = await raw("POST", "/v1/completions", { prompt: [prompts[1]], temperature: 0, max_tokens: mt,
      logprobs: 1, echo: true });
    eq(alone.json.choices[0].logprobs.token_logprobs, r.json.choices[1].logprobs.token_logprobs, "alone = batched, bit for bit");
  }
});

await test("logprobs_from recipe: a DoLa-scored loglikelihood equals lm_score in that mode", async () => {
  const c = expect.loglik_dola;
  const r = await raw("POST", "/v1/completions", { prompt: [c.ids], temperature: 0, max_tokens: 1, logprobs: 1,
    echo: true, slua: { recipe: "dola", options: { dola_layers: "high" }, logprobs_from: "recipe" } });
  eq(r.status, 200, "status " + r.text);
  const lp = r.json.choices[0].logprobs;
  const sum = lp.token_logprobs.slice(c.ctxlen, c.ids.length).reduce((a, b) => a + b, 0);
  assert(Math.abs(sum - c.lm_score) <= 1e-5, `sum ${sum} = lm_score ${c.lm_score}`);
  const bad = await raw("POST", "/v1/completions", { prompt: [c.ids], max_tokens: 1, logprobs: 1, echo: true,
    slua: { recipe: "contrastive_search", logprobs_from: "recipe" } });
  eq([bad.status, bad.json.error.param], [400, "slua.logprobs_from"], "a recipe without a scoring path");
});

await test("remote tokenizer endpoints (what lm-eval reads)", async () => {
  const info = await raw("GET", "/tokenizer_info");
  eq(info.json.eos_token, "</s>", "eos_token");
  const t = await raw("POST", "/tokenize", { prompt: "</s>", add_special_tokens: false });
  eq(t.json.tokens, [2], "special-token text maps to its id");
  for (const s of expect.roundtrip) {
    const e = await raw("POST", "/tokenize", { prompt: s, add_special_tokens: false });
    const d = await raw("POST", "/detokenize", { tokens: e.json.tokens });
    eq(d.json.prompt, s, "round trip");
  }
});

await test("a 100 MB body is a 413, and the server goes on", async () => {
  const r = await new Promise((resolve) => {
    const req = http.request(base + "/v1/completions", { method: "POST", headers: {
      authorization: "Bearer " + key, "content-type": "application/json", "content-length": String(100 << 20) } },
      (res) => { res.resume(); resolve(res.statusCode); });
    req.on("error", () => resolve("closed"));
    req.write("{\"prompt\": \"");
  });
  eq(r, 413, "status");
  eq((await raw("GET", "/health")).status, 200, "still serving");
});

await test("a client sending one byte at a time does not stop others; it is cut off", async () => {
  const sock = net.connect(new URL(base).port, "127.0.0.1");
  const closed = new Promise((resolve) => sock.on("close", resolve));
  sock.on("error", () => {});
  const line = "GET /health HTTP/1.1\r\nHost: x\r\n";
  let i = 0;
  const timer = setInterval(() => { if (i < line.length) sock.write(line[i++]); }, 300);
  const r = await client.completions.create({ prompt: P, max_tokens: 4, temperature: 0 });
  assert(r.choices[0].text.length > 0, "served meanwhile");
  await closed; // the header deadline closes it
  clearInterval(timer);
});

await test("a client that goes away mid-stream cancels its generation", async () => {
  const before = (await raw("GET", "/metrics")).text.match(/slua:requests_cancelled_total (\d+)/)[1] | 0;
  const ctl = new AbortController();
  const s = await client.completions.create({ prompt: P, max_tokens: 400, temperature: 0.9, seed: 1, stream: true }, { signal: ctl.signal });
  try { for await (const c of s) { ctl.abort(); } } catch { /* aborted */ }
  for (;;) { // until the server has seen it (it checks every step)
    const now = (await raw("GET", "/metrics")).text.match(/slua:requests_cancelled_total (\d+)/)[1] | 0;
    if (now > before) break;
  }
  const r = await client.completions.create({ prompt: P, max_tokens: 12, temperature: 0 });
  eq(r.choices[0].text, expect.greedy_text, "others unaffected");
});

if (failed) { console.log(`${failed} failed`); process.exit(1); }
console.log("all passed");
