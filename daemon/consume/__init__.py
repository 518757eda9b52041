"""The end of the path, inside one sink's worker: deliveries taken from the sink's queue, decoded
into records, written as a batch, then acknowledged (or dead-lettered)."""
