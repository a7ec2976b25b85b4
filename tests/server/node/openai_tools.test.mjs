// Function calling through the official openai npm package, on a model with Qwen's template, or
// with Llama 3.1's (run.sh's second argument; its answer is the call, one per turn) (a
// synthesized random one: it never calls by itself, so every call here is one the server's call
// grammar forced): tool_choice "required" and a named function, whole and through the SDK's
// stream helper, and the SDK's own agent loop (runTools) calling a local function with the
// arguments it parsed.
import { test } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";

const url = process.env.XTILE_URL;
const client = new OpenAI({ baseURL: url + "/v1", apiKey: "not-needed", maxRetries: 0 });
const model = (await client.models.list()).data[0].id;

// Arguments of bounded length (an enum and a boolean), so each call closes within max_tokens.
const weather = {
  type: "object",
  properties: { city: { enum: ["Oslo", "Paris", "Lima"] }, metric: { type: "boolean" } },
  required: ["city"], additionalProperties: false,
};
const tools = [
  { type: "function",
    function: { name: "get_weather", description: "The weather in a city", parameters: weather,
                strict: true } },
  { type: "function",
    function: { name: "ping", parameters: { type: "object", additionalProperties: false } } },
];
// The template would let Qwen3 think first; this random model would not stop.
const base = {
  model, messages: [{ role: "user", content: "What is the weather in Oslo?" }], tools,
  max_tokens: 200, temperature: 0.8, chat_template_kwargs: { enable_thinking: false },
};

function checkWeather(args) {
  assert.ok(["Oslo", "Paris", "Lima"].includes(args.city), JSON.stringify(args));
  for (const key of Object.keys(args)) assert.ok(["city", "metric"].includes(key), key);
  if ("metric" in args) assert.equal(typeof args.metric, "boolean");
}

test("tool_choice required: the reply is a call of one of the tools", async () => {
  for (const seed of [1, 2, 3]) {
    const r = await client.chat.completions.create({
      ...base, seed, tool_choice: "required", parallel_tool_calls: false });
    const c = r.choices[0];
    assert.equal(c.finish_reason, "tool_calls");
    assert.equal(c.message.content, null);
    assert.equal(c.message.tool_calls.length, 1);
    const call = c.message.tool_calls[0];
    assert.equal(call.type, "function");
    assert.match(call.id, /^call_/);
    const args = JSON.parse(call.function.arguments);
    if (call.function.name === "get_weather") checkWeather(args);
    else assert.deepEqual([call.function.name, args], ["ping", {}]);
  }
});

test("a named function, streamed through the SDK's helper, gives the whole reply's calls", async () => {
  const params = { ...base, seed: 7, tool_choice: { type: "function", function: { name: "get_weather" } } };
  const whole = await client.chat.completions.create(params);
  const stream = client.chat.completions.stream(params);
  const final = await stream.finalChatCompletion();
  const calls = (m) => m.tool_calls.map((t) => [t.function.name, JSON.parse(t.function.arguments)]);
  assert.ok(whole.choices[0].message.tool_calls.length >= 1);
  for (const [name, args] of calls(whole.choices[0].message)) {
    assert.equal(name, "get_weather");
    checkWeather(args);
  }
  assert.deepEqual(calls(final.choices[0].message), calls(whole.choices[0].message));
  assert.equal(final.choices[0].finish_reason, "tool_calls");
});

test("runTools: the SDK calls the local function with the parsed arguments", async () => {
  const seen = [];
  const runner = client.chat.completions.runTools({
    ...base, seed: 11, tool_choice: { type: "function", function: { name: "get_weather" } },
    tools: [{ type: "function",
              function: { name: "get_weather", parameters: weather, parse: JSON.parse,
                          function: (args) => { seen.push(args); return { celsius: 21 }; } } }],
  });
  await runner.done();
  assert.equal(seen.length, 1);
  checkWeather(seen[0]);
  // The conversation the SDK kept: the assistant's call, then the function's result.
  const roles = runner.messages.map((m) => m.role);
  assert.deepEqual(roles.slice(-2), ["assistant", "tool"]);
  assert.equal(runner.messages.at(-1).content, JSON.stringify({ celsius: 21 }));
});
