"""Between the emitter and the consumers: broker URLs and credentials, connecting with failover,
and the fanout exchange and per-sink queues logfan declares."""
