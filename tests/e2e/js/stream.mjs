// The official JS SDK's messages.stream against batchyard's live SSE:
//   node stream.mjs <baseURL> <apiKey> <model>
// Prints one JSON line: how many text events arrived, the final text, usage, stop reason.
const [baseURL, apiKey, model] = process.argv.slice(2);
const { default: Anthropic } = await import("@anthropic-ai/sdk");
const client = new Anthropic({ apiKey, baseURL, maxRetries: 0 });
const stream = client.messages.stream({
  model,
  max_tokens: 30,
  temperature: 0,
  messages: [{ role: "user", content: "Say hello to the team." }],
});
let events = 0;
let streamed = "";
stream.on("text", (text) => {
  events += 1;
  streamed += text;
});
const final = await stream.finalMessage();
console.log(JSON.stringify({ events, streamed, text: final.content[0].text, usage: final.usage,
                             stop: final.stop_reason }));
