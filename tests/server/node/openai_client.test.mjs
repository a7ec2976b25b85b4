// xtile serve through the official openai npm package, as an application would use it:
// models, chat (whole and streamed, with usage), n choices, completions, log-probabilities,
// seeds, errors as the SDK's typed exceptions, aborting a stream, JSON mode, and embeddings.
import { test } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";

const url = process.env.XTILE_URL;
const client = new OpenAI({ baseURL: url + "/v1", apiKey: "not-needed", maxRetries: 0 });
const MODEL = "stories260K.gguf";

test("models.list names the loaded model", async () => {
  const page = await client.models.list();
  assert.deepEqual(page.data.map((m) => m.id), [MODEL]);
  assert.equal(page.data[0].object, "model");
});

test("chat.completions.create answers with usage", async () => {
  const r = await client.chat.completions.create({
    model: MODEL, messages: [{ role: "user", content: "Tell me a story." }],
    max_tokens: 20, temperature: 0,
  });
  assert.equal(r.object, "chat.completion");
  assert.equal(r.choices[0].message.role, "assistant");
  assert.ok(r.choices[0].message.content.length > 0);
  assert.ok(["stop", "length"].includes(r.choices[0].finish_reason));
  assert.ok(r.usage.prompt_tokens > 0);
  assert.ok(r.usage.completion_tokens <= 20);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
});

test("a streamed chat gives the same text, the role first, usage last", async () => {
  const params = { model: MODEL, messages: [{ role: "user", content: "Once upon a time" }],
                   max_tokens: 30, temperature: 0.8, seed: 11 };
  const whole = await client.chat.completions.create(params);
  const stream = await client.chat.completions.create({
    ...params, stream: true, stream_options: { include_usage: true } });
  let text = "", first = null, finish = null, usage = null, chunks = 0;
  for await (const chunk of stream) {
    chunks += 1;
    if (first === null) first = chunk;
    if (chunk.usage) usage = chunk.usage;
    const c = chunk.choices[0];
    if (!c) continue;
    text += c.delta.content ?? "";
    if (c.finish_reason) finish = c.finish_reason;
  }
  assert.ok(chunks >= 3);
  assert.equal(first.choices[0].delta.role, "assistant");
  assert.equal(text, whole.choices[0].message.content);
  assert.equal(finish, whole.choices[0].finish_reason);
  assert.equal(usage.completion_tokens, whole.usage.completion_tokens);
});

test("the same seed gives the same answer; another seed another one", async () => {
  const ask = (seed) => client.chat.completions.create({
    model: MODEL, messages: [{ role: "user", content: "A story about a cat" }],
    max_tokens: 24, temperature: 1.0, seed });
  const [a, b, c] = await Promise.all([ask(5), ask(5), ask(6)]);
  assert.equal(a.choices[0].message.content, b.choices[0].message.content);
  assert.notEqual(a.choices[0].message.content, c.choices[0].message.content);
});

test("n choices are the answers of seeds counting up, whole and through the SDK's stream", async () => {
  const params = { model: MODEL, messages: [{ role: "user", content: "A story about a dog" }],
                   max_tokens: 20, temperature: 1.0, seed: 40 };
  const many = await client.chat.completions.create({ ...params, n: 3 });
  assert.equal(many.choices.length, 3);
  for (const i of [0, 1, 2]) {
    const one = await client.chat.completions.create({ ...params, seed: 40 + i });
    assert.equal(many.choices[i].index, i);
    assert.equal(many.choices[i].message.content, one.choices[0].message.content);
  }
  assert.notEqual(many.choices[0].message.content, many.choices[1].message.content);
  // The SDK's stream helper puts each chunk's delta in the choice its index names.
  const final = await client.chat.completions.stream({ ...params, n: 3 }).finalChatCompletion();
  assert.deepEqual(final.choices.map((c) => c.message.content),
                   many.choices.map((c) => c.message.content));
  assert.deepEqual(final.choices.map((c) => c.finish_reason),
                   many.choices.map((c) => c.finish_reason));
});

test("chat logprobs with top_logprobs", async () => {
  const r = await client.chat.completions.create({
    model: MODEL, messages: [{ role: "user", content: "Hi" }], max_tokens: 6, temperature: 0,
    logprobs: true, top_logprobs: 3 });
  const content = r.choices[0].logprobs.content;
  assert.ok(content.length > 0);
  for (const t of content) {
    assert.equal(typeof t.token, "string");
    assert.ok(t.logprob <= 0);
    assert.equal(t.top_logprobs.length, 3);
    // Greedy: the chosen token is the most likely one.
    assert.equal(t.top_logprobs[0].logprob, t.logprob);
  }
});

test("completions.create, whole and streamed", async () => {
  const params = { model: MODEL, prompt: "Lily and Tom", max_tokens: 16, temperature: 0 };
  const r = await client.completions.create(params);
  assert.equal(r.object, "text_completion");
  assert.ok(r.choices[0].text.length > 0);
  let text = "";
  for await (const chunk of await client.completions.create({ ...params, stream: true }))
    text += chunk.choices[0]?.text ?? "";
  assert.equal(text, r.choices[0].text);
});

test("errors arrive as the SDK's typed errors", async () => {
  await assert.rejects(
    client.chat.completions.create({ model: "gpt-4o", messages: [{ role: "user", content: "x" }] }),
    (e) => e instanceof OpenAI.NotFoundError && e.status === 404 && e.code === "model_not_found");
  await assert.rejects(
    client.completions.create({ model: MODEL, prompt: "dog ".repeat(3000) }),
    (e) => e instanceof OpenAI.BadRequestError && e.code === "context_length_exceeded");
  await assert.rejects(
    client.chat.completions.create({ model: MODEL, messages: [{ role: "wizard", content: "x" }] }),
    (e) => e instanceof OpenAI.BadRequestError && /role/.test(e.message));
});

test("aborting a stream leaves the server serving", async () => {
  const stream = await client.chat.completions.create({
    model: MODEL, messages: [{ role: "user", content: "A long story" }], max_tokens: 400,
    stream: true });
  let n = 0;
  for await (const _ of stream) {
    if (++n === 2) { stream.controller.abort(); break; }
  }
  const r = await client.chat.completions.create({
    model: MODEL, messages: [{ role: "user", content: "Hi" }], max_tokens: 4 });
  assert.ok(r.choices[0].message.content !== undefined);
  const health = await fetch(url + "/health");
  assert.equal(health.status, 200);
});

test("JSON mode: response_format json_object gives an object JSON.parse takes", async () => {
  // The stories model knows no JSON: the grammar writes the object. Its token "}" is boosted so
  // that the object closes within the limit and the reply ends by itself.
  const tk = await (await fetch(url + "/tokenize", {
    method: "POST", body: JSON.stringify({ content: "{}", with_pieces: true }) })).json();
  const close = tk.tokens.find((t) => t.piece === "}");
  assert.ok(close, JSON.stringify(tk));
  const r = await client.chat.completions.create({
    model: MODEL, messages: [{ role: "user", content: "A cat as JSON" }], max_tokens: 60,
    temperature: 0.7, seed: 3, response_format: { type: "json_object" },
    logit_bias: { [close.id]: 50 } });
  assert.equal(r.choices[0].finish_reason, "stop");
  const value = JSON.parse(r.choices[0].message.content);
  assert.equal(typeof value, "object");
  assert.ok(value !== null && !Array.isArray(value));
  await assert.rejects(
    client.chat.completions.create({
      model: MODEL, messages: [{ role: "user", content: "x" }],
      response_format: { type: "json_schema", json_schema: { name: "x", schema: {
        type: "object", properties: { a: { type: "string", format: "iri" } } } } } }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === "response_format.json_schema.schema"
      && /format/.test(e.message));
});

test("JSON mode: a json_schema reply parses to an instance of the schema", async () => {
  const schema = {
    type: "object",
    properties: { animal: { enum: ["cat", "dog"] }, happy: { type: "boolean" } },
    required: ["animal", "happy"], additionalProperties: false,
  };
  const r = await client.chat.completions.create({
    model: MODEL, messages: [{ role: "user", content: "A pet" }], max_tokens: 300,
    temperature: 0.8, seed: 5,
    response_format: { type: "json_schema", json_schema: { name: "pet", strict: true, schema } } });
  assert.equal(r.choices[0].finish_reason, "stop");
  const value = JSON.parse(r.choices[0].message.content);
  assert.deepEqual(Object.keys(value).sort(), ["animal", "happy"]);
  assert.ok(["cat", "dog"].includes(value.animal));
  assert.equal(typeof value.happy, "boolean");
});

test("embeddings.create: the SDK's base64 transfer decodes to the float vectors", async () => {
  const input = ["A cat sleeps.", "A dog barks."];
  // The SDK asks for base64 by default and decodes it; the same request in floats must agree.
  const viaBase64 = await client.embeddings.create({ model: MODEL, input });
  const viaFloats = await client.embeddings.create({ model: MODEL, input, encoding_format: "float" });
  assert.equal(viaBase64.data.length, 2);
  for (let i = 0; i < 2; i++) {
    assert.equal(viaBase64.data[i].index, i);
    assert.deepEqual(Array.from(viaBase64.data[i].embedding), viaFloats.data[i].embedding);
    const len = Math.hypot(...viaFloats.data[i].embedding);
    assert.ok(Math.abs(len - 1) < 1e-5, String(len));
  }
  assert.ok(viaFloats.usage.prompt_tokens > 0);
  const short = await client.embeddings.create({ model: MODEL, input: input[0], dimensions: 8,
                                                 encoding_format: "float" });
  assert.equal(short.data[0].embedding.length, 8);
});
