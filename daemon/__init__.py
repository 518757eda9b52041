"""logfan daemon: config, supervisor, consumers, broker plumbing, emitter, CLI."""
