// Seed-style use of the official JS SDK against batchyard:
//   node scenario.mjs <package> <baseURL> <apiKey>
// Exits non-zero on any failed expectation; prints one JSON summary line on success.
import assert from "node:assert/strict";

const [pkg, baseURL, apiKey] = process.argv.slice(2);
const { default: Anthropic } = await import(pkg);
const client = new Anthropic({ apiKey, baseURL, maxRetries: 0 });
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const tickets = {
  "ticket-1": "My invoice shows a double charge for November.",
  "ticket-2": "The app crashes when I upload a photo.",
  "ticket-3": "How do I change the email on my account?",
};
const request = (custom_id, content, model = "sim") => ({
  custom_id,
  params: { model, max_tokens: 64, messages: [{ role: "user", content }] },
});

async function waitEnded(id) {
  for (let i = 0; i < 600; i++) {
    const batch = await client.messages.batches.retrieve(id);
    if (batch.processing_status === "ended") return batch;
    await sleep(200);
  }
  throw new Error("batch did not end");
}

// Create, poll, results.
const batch = await client.messages.batches.create({
  requests: Object.entries(tickets).map(([id, text]) => request(id, text)),
});
assert.equal(batch.processing_status, "in_progress");
assert.equal(batch.results_url, null);
const ended = await waitEnded(batch.id);
assert.equal(ended.request_counts.succeeded, 3);
const seen = new Set();
for await (const line of await client.messages.batches.results(batch.id)) {
  assert.equal(line.result.type, "succeeded");
  assert.equal(line.result.message.usage.service_tier, "batch");
  seen.add(line.custom_id);
}
assert.deepEqual([...seen].sort(), Object.keys(tickets).sort());

// Auto-pagination, newest first, each batch once.
const created = [batch.id];
for (let i = 0; i < 6; i++) {
  created.push((await client.messages.batches.create({ requests: [request("only", "hi")] })).id);
}
const listed = [];
for await (const item of client.messages.batches.list({ limit: 2 })) listed.push(item.id);
assert.deepEqual(listed, [...created].reverse());

// Cancel a slow batch.
const slow = await client.messages.batches.create({
  requests: Array.from({ length: 10 }, (_, n) => request(`slow-${n}`, `t${n}`, "sim-slow")),
});
const canceling = await client.messages.batches.cancel(slow.id);
assert.ok(canceling.cancel_initiated_at);
const canceled = await waitEnded(slow.id);
assert.ok(canceled.request_counts.canceled > 0);

// Delete, then 404 as NotFoundError with a request id.
const deleted = await client.messages.batches.delete(batch.id);
assert.equal(deleted.type, "message_batch_deleted");
let notFound;
try {
  await client.messages.batches.retrieve(batch.id);
} catch (error) {
  notFound = error;
}
assert.ok(notFound instanceof Anthropic.NotFoundError, String(notFound));
assert.ok(notFound.requestID || notFound.request_id);

// The sync Messages API.
const message = await client.messages.create({
  model: "sim", max_tokens: 16, messages: [{ role: "user", content: "hello" }],
});
assert.equal(message.type, "message");

console.log(JSON.stringify({ pkg, results: seen.size, listed: listed.length,
                             canceled: canceled.request_counts.canceled }));
