// The official OpenAI Node SDK against batchyard, unchanged but for baseURL and apiKey:
//   node openai_flow.mjs <baseURL ending in /v1> <apiKey> <model> <slowModel> <slowCount> <greedy>
// Files, Batches (upload, create, poll, download, cancel, a failed file) and Chat
// Completions (plain and streamed). The cancel runs <slowCount> requests of <slowModel>, enough
// that some are still queued when it lands. <greedy> "1": the model answers a prompt the same
// way every time at temperature 0 (the embedded model), so plain and streamed text must match.
// Exits non-zero on any failed expectation; prints one JSON summary line on success.
import assert from "node:assert/strict";
import OpenAI, { toFile } from "openai";

const [baseURL, apiKey, model, slowModel, slowCount, greedy] = process.argv.slice(2);
const client = new OpenAI({ apiKey, baseURL, maxRetries: 0 });
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const FINAL = new Set(["completed", "failed", "expired", "cancelled"]);

const line = (custom_id, chosenModel = model, maxTokens = 12) => ({
  custom_id,
  method: "POST",
  url: "/v1/chat/completions",
  body: {
    model: chosenModel,
    max_tokens: maxTokens,
    temperature: 0,
    messages: [{ role: "user", content: `Name a colour for ${custom_id}.` }],
  },
});
const jsonl = (lines) => lines.map((l) => JSON.stringify(l)).join("\n") + "\n";
const upload = async (name, text) =>
  client.files.create({ file: await toFile(Buffer.from(text), name), purpose: "batch" });

async function waitFinal(id) {
  for (let i = 0; i < 3000; i++) {
    const batch = await client.batches.retrieve(id);
    if (FINAL.has(batch.status)) return batch;
    await sleep(200);
  }
  throw new Error(`batch ${id} did not finish`);
}

// Upload, create, poll, download: every custom_id matched.
const ids = Array.from({ length: 20 }, (_, i) => `row-${i}`);
const input = await upload("requests.jsonl", jsonl(ids.map((id) => line(id))));
assert.equal(input.purpose, "batch");
assert.equal((await client.files.retrieve(input.id)).bytes, input.bytes);
const created = await client.batches.create({
  input_file_id: input.id,
  endpoint: "/v1/chat/completions",
  completion_window: "24h",
  metadata: { source: "node" },
});
assert.equal(created.status, "in_progress");
const done = await waitFinal(created.id);
assert.equal(done.status, "completed");
assert.deepEqual(done.request_counts, { total: 20, completed: 20, failed: 0 });
const output = await (await client.files.content(done.output_file_id)).text();
const results = output.trim().split("\n").map((l) => JSON.parse(l));
assert.deepEqual(results.map((r) => r.custom_id).sort(), [...ids].sort());
for (const r of results) {
  assert.equal(r.response.status_code, 200);
  assert.equal(r.response.body.object, "chat.completion");
  assert.ok(typeof r.response.body.choices[0].message.content === "string");
}

// Cancel a batch on a slow model.
const slowIds = Array.from({ length: Number(slowCount) }, (_, i) => `slow-${i}`);
const slowInput = await upload("slow.jsonl", jsonl(slowIds.map((id) => line(id, slowModel, 32))));
const slow = await client.batches.create({
  input_file_id: slowInput.id,
  endpoint: "/v1/chat/completions",
  completion_window: "24h",
});
const cancelling = await client.batches.cancel(slow.id);
assert.ok(["cancelling", "cancelled"].includes(cancelling.status));
const cancelled = await waitFinal(slow.id);
assert.equal(cancelled.status, "cancelled");
assert.ok(cancelled.request_counts.failed > 0);

// A file with bad lines: a failed batch naming each line.
const bad = await upload("bad.jsonl", jsonl([line("a"), line("a")]) + "not json\n");
const failed = await client.batches.create({
  input_file_id: bad.id,
  endpoint: "/v1/chat/completions",
  completion_window: "24h",
});
assert.equal(failed.status, "failed");
assert.deepEqual(
  failed.errors.data.map((e) => e.line),
  [2, 3],
);

// Listing pages through every batch.
const listed = [];
for await (const batch of client.batches.list({ limit: 2 })) listed.push(batch.id);
assert.deepEqual(listed.slice(0, 3), [failed.id, slow.id, created.id]);

// Chat Completions, plain and streamed: the same text from a greedy model (the simulated
// engine varies its answer to a repeated prompt, so there only the shape is compared).
const messages = [{ role: "user", content: "Say hello." }];
const plain = await client.chat.completions.create({ model, messages, max_tokens: 12, temperature: 0 });
assert.equal(plain.object, "chat.completion");
let streamed = "";
let usage = null;
const stream = await client.chat.completions.create({
  model,
  messages,
  max_tokens: 12,
  temperature: 0,
  stream: true,
  stream_options: { include_usage: true },
});
for await (const chunk of stream) {
  streamed += chunk.choices[0]?.delta?.content ?? "";
  if (chunk.usage) usage = chunk.usage;
}
assert.ok(plain.choices[0].message.content.length > 0 && streamed.length > 0);
if (greedy === "1") assert.equal(streamed, plain.choices[0].message.content);
assert.equal(usage.prompt_tokens, plain.usage.prompt_tokens);
assert.ok(usage.completion_tokens > 0);

await client.files.delete(input.id);
await assert.rejects(client.files.retrieve(input.id), OpenAI.NotFoundError);

console.log(
  JSON.stringify({ results: results.length, cancelled: cancelled.request_counts, listed: listed.length }),
);
