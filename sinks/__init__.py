"""logfan sinks: the sink contract and the built-in sinks."""
