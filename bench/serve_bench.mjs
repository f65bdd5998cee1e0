// Client side of bench/serve_compare.sh: streams completions from an OpenAI-compatible server
// (slua serve or llama.cpp's llama-server) and reports, as one JSON line, the median time to
// first token, the median per-request decode rate, and the aggregate rate of C clients.
//   node bench/serve_bench.mjs URL CLIENTS ROUNDS MAX_TOKENS [PROMPT_IDS]
import http from "node:http";

const [url, clients, rounds, maxTokens, ids] = [process.argv[2], +process.argv[3], +process.argv[4], +process.argv[5],
  (process.argv[6] || "1,403,407,261,378").split(",").map(Number)];

function one() {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let first = null, tokens = 0, buf = "";
    const req = http.request(url + "/v1/completions", { method: "POST", agent: false,
      headers: { "content-type": "application/json", authorization: "Bearer bench" } }, (res) => {
      res.setEncoding("utf8");
      res.on("data", (chunk) => {
        buf += chunk;
        let k;
        while ((k = buf.indexOf("\n\n")) >= 0) {
          const ev = buf.slice(0, k); buf = buf.slice(k + 2);
          if (!ev.startsWith("data: ") || ev === "data: [DONE]") continue;
          const j = JSON.parse(ev.slice(6));
          if (j.choices && j.choices[0] && j.choices[0].text) { tokens++; if (first === null) first = performance.now(); }
        }
      });
      res.on("end", () => resolve({ ttft: first - t0, total: performance.now() - t0, decode: performance.now() - first, tokens }));
    });
    req.on("error", reject);
    // temperature 0, no stop, EOS ignored where the server knows the flag, so every request decodes maxTokens
    req.end(JSON.stringify({ prompt: ids, max_tokens: maxTokens, temperature: 0, stream: true, ignore_eos: true,
      n_predict: maxTokens }));
  });
}

const median = (a) => { const s = [...a].sort((x, y) => x - y); return s[s.length >> 1]; };
const ttft = [], rate = [], agg = [];
for (let r = 0; r < rounds; r++) {
  const t0 = performance.now();
  const res = await Promise.all(Array.from({ length: clients }, one));
  const wall = (performance.now() - t0) / 1000;
  for (const x of res) { ttft.push(x.ttft); rate.push((x.tokens - 1) / (x.decode / 1000)); }
  agg.push(res.reduce((a, x) => a + x.tokens, 0) / wall);
}
console.log(JSON.stringify({ url, clients, rounds, max_tokens: maxTokens, ttft_ms: median(ttft),
  decode_tok_s: median(rate), aggregate_tok_s: median(agg) }));
