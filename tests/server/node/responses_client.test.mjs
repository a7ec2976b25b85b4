// OpenAI's Responses API through the official openai npm package (client.responses), as the
// newer SDK helpers and agents use it: a response whole and through the SDK's stream helper
// (the same output), output_text, a forced function call and its output sent back, structured
// output through text.format, and errors as the package's classes. The model is a synthesized
// random one with Qwen's template (every call is one the server's call grammar forced).
import { test } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";

const url = process.env.XTILE_URL;
const client = new OpenAI({ baseURL: url + "/v1", apiKey: "not-needed", maxRetries: 0 });
const model = (await client.models.list()).data[0].id;
// Thinking off: this random model would not close a think block.
const base = { model, max_output_tokens: 24, temperature: 0.8, reasoning: { effort: "none" } };
const weather = {
  type: "function", name: "get_weather", description: "The weather in a city", strict: true,
  parameters: { type: "object", properties: { city: { enum: ["Oslo", "Paris", "Lima"] } },
                required: ["city"], additionalProperties: false },
};

test("a streamed response builds the whole one", async () => {
  const params = { ...base, seed: 3, instructions: "Be brief.", input: "Tell me about frogs" };
  const whole = await client.responses.create(params);
  assert.equal(whole.object, "response");
  assert.ok(["completed", "incomplete"].includes(whole.status));
  assert.equal(whole.output[0].type, "message");
  assert.equal(typeof whole.output_text, "string");  // the SDK's sum of the text parts
  let deltas = "", last = null;
  const stream = client.responses.stream(params);
  stream.on("response.output_text.delta", (e) => { deltas += e.delta; });
  stream.on("event", (e) => { last = e; });
  const final = await stream.finalResponse();
  assert.equal(deltas, whole.output_text);
  // The helper's final response adds `parsed` to each part, and takes only response.completed
  // whole (after response.incomplete it keeps its own snapshot): compare the items' text, and
  // the last event's response with the whole one.
  const shape = (r) => r.output.map((i) => [i.type, i.content.map((c) => c.text)]);
  assert.deepEqual(shape(final), shape(whole));
  assert.equal(last.type, whole.status === "completed" ? "response.completed" : "response.incomplete");
  assert.equal(last.response.status, whole.status);
  assert.equal(last.response.usage.output_tokens, whole.usage.output_tokens);
});

test("a forced function call, then its output sent back", async () => {
  const params = { ...base, max_output_tokens: 200, seed: 4, tools: [weather],
                   tool_choice: { type: "function", name: "get_weather" },
                   parallel_tool_calls: false, input: "Weather in Oslo?" };
  const r = await client.responses.create(params);
  assert.equal(r.output.length, 1);
  const call = r.output[0];
  assert.equal(call.type, "function_call");
  assert.equal(call.name, "get_weather");
  const args = JSON.parse(call.arguments);
  assert.ok(["Oslo", "Paris", "Lima"].includes(args.city), call.arguments);
  const streamed = await client.responses.stream(params).finalResponse();
  assert.equal(streamed.output[0].arguments, call.arguments);
  const next = await client.responses.create({
    ...base, tools: [weather], input: [
      { role: "user", content: "Weather in Oslo?" }, call,
      { type: "function_call_output", call_id: call.call_id, output: "-3 C" }] });
  assert.equal(next.output.at(-1).type, "message");
});

test("text.format json_schema gives an instance of the schema", async () => {
  const r = await client.responses.create({
    ...base, max_output_tokens: 200, seed: 5, input: "Pick a colour",
    text: { format: { type: "json_schema", name: "pick", strict: true,
                      schema: { type: "object", properties: { colour: { enum: ["red", "blue"] } },
                                required: ["colour"], additionalProperties: false } } } });
  assert.equal(r.status, "completed");
  assert.ok(["red", "blue"].includes(JSON.parse(r.output_text).colour), r.output_text);
});

test("errors are the package's classes", async () => {
  await assert.rejects(
    client.responses.create({ ...base, input: "Hi", previous_response_id: "resp_1" }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === "previous_response_id");
  await assert.rejects(client.responses.create({ ...base, model: "gpt-5", input: "Hi" }),
                       (e) => e instanceof OpenAI.NotFoundError);
});
