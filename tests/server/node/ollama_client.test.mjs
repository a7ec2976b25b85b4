// xtile serve through the official ollama npm package (ollama-js), as an application written
// for Ollama would use it: list, chat and generate, whole and streamed, options, JSON format,
// aborting a stream, show, ps, version, embed, and errors as the package's ResponseError.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Ollama } from "ollama";

const ollama = new Ollama({ host: process.env.XTILE_URL });
const MODEL = "stories260K.gguf:latest";

test("list names the loaded model, which chat takes", async () => {
  const { models } = await ollama.list();
  assert.deepEqual(models.map((m) => m.name), [MODEL]);
  assert.equal(models[0].details.format, "gguf");
  assert.ok(models[0].size > 0);
  const r = await ollama.chat({ model: models[0].name, messages: [{ role: "user", content: "Hi" }],
                                options: { num_predict: 4 } });
  assert.equal(r.done, true);
});

test("a streamed chat adds up to the whole answer; the last part has the counts", async () => {
  const params = { model: MODEL, messages: [{ role: "user", content: "Tell me a story" }],
                   options: { seed: 8, temperature: 0.8, num_predict: 24 } };
  const whole = await ollama.chat(params);
  assert.equal(whole.message.role, "assistant");
  assert.ok(whole.message.content.length > 0);
  assert.ok(["stop", "length"].includes(whole.done_reason));
  let text = "", last = null, parts = 0;
  for await (const part of await ollama.chat({ ...params, stream: true })) {
    parts += 1;
    text += part.message.content;
    last = part;
  }
  assert.ok(parts >= 2);
  assert.equal(text, whole.message.content);
  assert.equal(last.done, true);
  assert.equal(last.done_reason, whole.done_reason);
  assert.equal(last.eval_count, whole.eval_count);
  assert.ok(last.eval_duration > 0);
});

test("generate, templated and raw, streamed and whole", async () => {
  const params = { model: MODEL, prompt: "Once upon a time", raw: true,
                   options: { seed: 3, temperature: 0.7, num_predict: 16 } };
  const whole = await ollama.generate(params);
  let text = "";
  for await (const part of await ollama.generate({ ...params, stream: true })) text += part.response;
  assert.equal(text, whole.response);
  const templated = await ollama.generate({ ...params, raw: false, system: "Be brief." });
  assert.equal(templated.done, true);
  assert.equal(typeof templated.response, "string");
});

test("format json gives an object's text", async () => {
  const r = await ollama.chat({ model: MODEL, messages: [{ role: "user", content: "A cat" }],
                                format: "json", options: { seed: 2, num_predict: 40 } });
  assert.equal(r.message.content.trimStart()[0], "{");
});

// The server's count of cancelled requests (GET /metrics).
async function cancelled() {
  const text = await (await fetch(process.env.XTILE_URL + "/metrics")).text();
  return Number(/^xtile:requests_cancelled_total (\d+)/m.exec(text)[1]);
}

test("aborting a stream cancels its request; the server goes on", async () => {
  const before = await cancelled();
  const stream = await ollama.generate({ model: MODEL, prompt: "Once", raw: true, stream: true,
                                         options: { num_predict: -1 } });
  let parts = 0;
  await assert.rejects(async () => {
    for await (const part of stream) {
      parts += 1;
      if (parts === 3) stream.abort();  // lines already received may still come out
    }
  }, (e) => e.name === "AbortError");
  let now = before;
  for (let i = 0; i < 100 && now === before; i++) {
    await new Promise((r) => setTimeout(r, 50));
    now = await cancelled();
  }
  assert.equal(now, before + 1);
  const r = await ollama.generate({ model: MODEL, prompt: "Hi", raw: true,
                                    options: { num_predict: 3 } });
  assert.equal(r.done, true);
});

test("show, ps and version", async () => {
  const show = await ollama.show({ model: MODEL });
  assert.equal(show.details.family, "llama");
  assert.ok(show.capabilities.includes("completion"));
  const ps = await ollama.ps();
  assert.equal(ps.models[0].name, MODEL);
  const v = await ollama.version();
  assert.equal(typeof v.version, "string");
});

test("an unknown model is the package's ResponseError, 404", async () => {
  await assert.rejects(
    ollama.chat({ model: "llama3.2", messages: [{ role: "user", content: "Hi" }] }),
    (e) => e.name === "ResponseError" && e.status_code === 404 && /not found/.test(e.error));
});

test("embed gives one vector of length 1 per input, as /v1/embeddings", async () => {
  const r = await ollama.embed({ model: MODEL, input: ["One fish", "Two fish"] });
  assert.equal(r.embeddings.length, 2);
  const openai = await (await fetch(process.env.XTILE_URL + "/v1/embeddings", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ input: ["One fish", "Two fish"] }) })).json();
  for (let i = 0; i < 2; i++) {
    assert.deepEqual(r.embeddings[i], openai.data[i].embedding);
    assert.ok(Math.abs(Math.hypot(...r.embeddings[i]) - 1) < 1e-5);
  }
  assert.equal(r.prompt_eval_count, openai.usage.prompt_tokens);
});
