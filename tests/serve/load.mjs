// slua serve under load (tests/lua/test_serve.lua):
//   SLUA_MODE=flood: 200 requests at once against a small --max-queue: every one is either a
//     whole completion or a 429, none lost or answered twice.
//   SLUA_MODE=drain SLUA_PID=pid: SIGTERM while requests run: each still gets its completion.
import http from "node:http";

const base = process.env.SLUA_BASE, key = process.env.SLUA_KEY, mode = process.env.SLUA_MODE;

function post(body) {
  return new Promise((resolve) => {
    const req = http.request(base + "/v1/completions", { method: "POST", agent: false,
      headers: { authorization: "Bearer " + key, "content-type": "application/json" } }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (c) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode, text }));
    });
    req.on("error", (e) => resolve({ status: "error " + e.code, text: "" }));
    req.end(JSON.stringify(body));
  });
}

let ok = true;
function check(cond, msg) { if (!cond) { ok = false; console.log("FAIL " + msg); } }

if (mode === "flood") {
  const all = await Promise.all(Array.from({ length: 200 }, (_, i) => post({ prompt: [1, 403, 407], max_tokens: 4,
    temperature: 0, user: "r" + i })));
  const counts = {};
  for (const r of all) counts[r.status] = (counts[r.status] || 0) + 1;
  check((counts[200] || 0) + (counts[429] || 0) === 200, "every request answered 200 or 429: " + JSON.stringify(counts));
  check(counts[429] > 0 && counts[200] > 0, "some refused, some served: " + JSON.stringify(counts));
  const ids = new Set();
  for (const r of all.filter((x) => x.status === 200)) {
    const j = JSON.parse(r.text);
    check(j.choices.length === 1 && j.choices[0].text.length > 0, "one whole choice");
    check(!ids.has(j.id), "each answer once");
    ids.add(j.id);
  }
  console.log("flood: " + JSON.stringify(counts));
} else if (mode === "drain") {
  let finished = 0;
  const running = Array.from({ length: 4 }, () => post({ prompt: [1, 403, 407], max_tokens: 48, temperature: 0 })
    .then((r) => { finished++; return r; }));
  // once the server has had all of them (running, waiting for a slot or answered; its metrics
  // say so), stop it: a request that reaches it after SIGTERM is refused with 503, as it should be
  for (;;) {
    const done = finished; /* before the metrics: a request answered after them is still in them */
    const m = await new Promise((resolve) => http.get(base + "/metrics", { headers: { authorization: "Bearer " + key } },
      (res) => { let t = ""; res.on("data", (c) => (t += c)); res.on("end", () => resolve(t)); }));
    const gauge = (name) => +(m.match(new RegExp("slua:" + name + " (\\d+)")) || [0, 0])[1];
    if (done + gauge("requests_processing") + gauge("requests_deferred") >= running.length) break;
  }
  process.kill(+process.env.SLUA_PID, "SIGTERM");
  for (const r of await Promise.all(running)) check(r.status === 200 && JSON.parse(r.text).choices[0].finish_reason === "length", "finished: " + r.status);
  console.log("drain: in-flight requests finished");
}
process.exit(ok ? 0 : 1);
