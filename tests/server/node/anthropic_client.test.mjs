// xtile serve through the official Anthropic npm package (@anthropic-ai/sdk), as an application
// or agent written for Claude would use it with ANTHROPIC_BASE_URL pointed here: the model
// listing, a message whole and through the SDK's stream helper (the same text), forced tool use
// and the tool's result sent back, count_tokens, aborting a stream, and errors as the package's
// classes. The model is a synthesized random one with Qwen's template (it never calls a tool by
// itself: every call here is one the server's call grammar forced).
import { test } from "node:test";
import assert from "node:assert/strict";
import Anthropic from "@anthropic-ai/sdk";

const url = process.env.XTILE_URL;
const client = new Anthropic({ baseURL: url, apiKey: "not-needed", maxRetries: 0 });

const page = await client.models.list();
const model = page.data[0].id;
// Thinking off: this random model would not close a think block.
const base = { model, max_tokens: 24, temperature: 0.8, thinking: { type: "disabled" } };
const weather = {
  name: "get_weather", description: "The weather in a city",
  input_schema: { type: "object", properties: { city: { enum: ["Oslo", "Paris", "Lima"] } },
                  required: ["city"], additionalProperties: false },
};

test("the listing names the served model, which retrieve finds", async () => {
  assert.equal(page.data.length, 1);
  assert.equal(page.data[0].type, "model");
  assert.equal(page.has_more, false);
  const one = await client.models.retrieve(model);
  assert.equal(one.id, model);
});

test("a streamed message adds up to the whole one", async () => {
  const params = { ...base, seed: 5, system: "Be brief.",
                   messages: [{ role: "user", content: "Tell me about frogs" }] };
  const whole = await client.messages.create(params);
  assert.equal(whole.type, "message");
  assert.equal(whole.role, "assistant");
  assert.equal(whole.content[0].type, "text");
  assert.ok(["end_turn", "max_tokens"].includes(whole.stop_reason));
  assert.ok(whole.usage.output_tokens > 0);
  let text = "";
  const stream = client.messages.stream(params);
  stream.on("text", (delta) => { text += delta; });
  const final = await stream.finalMessage();
  assert.equal(text, whole.content[0].text);
  assert.deepEqual(final.content, whole.content);
  assert.equal(final.stop_reason, whole.stop_reason);
  assert.equal(final.usage.output_tokens, whole.usage.output_tokens);
});

test("forced tool use, whole and streamed, then the tool's result", async () => {
  const params = { ...base, max_tokens: 200, seed: 2, tools: [weather],
                   tool_choice: { type: "tool", name: "get_weather" },
                   messages: [{ role: "user", content: "Weather in Lima?" }] };
  const whole = await client.messages.create(params);
  assert.equal(whole.stop_reason, "tool_use");
  const use = whole.content.find((b) => b.type === "tool_use");
  assert.equal(use.name, "get_weather");
  assert.ok(["Oslo", "Paris", "Lima"].includes(use.input.city), JSON.stringify(use.input));
  const final = await client.messages.stream(params).finalMessage();
  assert.deepEqual(final.content.map((b) => b.type === "tool_use" ? [b.name, b.input] : b),
                   whole.content.map((b) => b.type === "tool_use" ? [b.name, b.input] : b));
  const answer = await client.messages.create({
    ...base, tools: [weather], messages: [
      ...params.messages,
      { role: "assistant", content: whole.content },
      { role: "user", content: [{ type: "tool_result", tool_use_id: use.id, content: "21 C" }] }] });
  assert.ok(["end_turn", "max_tokens"].includes(answer.stop_reason));
});

test("count_tokens is the prompt the message reads", async () => {
  const params = { model, system: "Be brief.", messages: [{ role: "user", content: "Hi there" }] };
  const { input_tokens } = await client.messages.countTokens(params);
  const m = await client.messages.create({ ...params, max_tokens: 1 });
  assert.equal(input_tokens, m.usage.input_tokens + m.usage.cache_read_input_tokens);
});

// The server's count of cancelled requests (GET /metrics).
async function cancelled() {
  const text = await (await fetch(url + "/metrics")).text();
  return Number(/^xtile:requests_cancelled_total (\d+)/m.exec(text)[1]);
}

test("aborting a stream cancels its request; the server goes on", async () => {
  const before = await cancelled();
  const stream = client.messages.stream({ ...base, max_tokens: 3000, ignore_eos: true,
                                          messages: [{ role: "user", content: "Go on" }] });
  let deltas = 0;
  stream.on("text", () => { deltas += 1; if (deltas === 3) stream.abort(); });
  await assert.rejects(stream.finalMessage(), (e) => e instanceof Anthropic.APIUserAbortError);
  let now = before;
  for (let i = 0; i < 100 && now === before; i++) {
    await new Promise((r) => setTimeout(r, 50));
    now = await cancelled();
  }
  assert.equal(now, before + 1);
  const m = await client.messages.create({ ...base, max_tokens: 2,
                                           messages: [{ role: "user", content: "Hi" }] });
  assert.equal(m.type, "message");
});

test("errors are the package's classes", async () => {
  await assert.rejects(
    client.messages.create({ ...base, model: "claude-sonnet-4-5",
                             messages: [{ role: "user", content: "Hi" }] }),
    (e) => e instanceof Anthropic.NotFoundError && e.error.error.type === "not_found_error");
  await assert.rejects(
    client.messages.create({ ...base, messages: [{ role: "user", content: [
      { type: "image", source: { type: "base64", media_type: "image/png", data: "iVBORw0KGgo=" } }] }] }),
    (e) => e instanceof Anthropic.BadRequestError && /text blocks/.test(e.message));
});
