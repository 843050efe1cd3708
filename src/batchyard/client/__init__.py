"""Client side: `batchyard run` and the `batchyard batches` commands, over any Anthropic-compatible
batch API."""
