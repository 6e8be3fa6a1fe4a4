"""Durable background work: jobs stored in the bridge database, claimed with a lease,
checkpointed as they go, retried with backoff, resumed after a crash."""
