"""The sync engine: stream, plan, send in batches, commit each acknowledged batch."""
