"""The config file, read before anything else runs: YAML with the line of every key, validated
into typed settings, sink types found through the ``logfan.sinks`` entry points."""
