"""``logfan run`` around the path: the supervisor, one worker process per sink, sd_notify, the
config watch and the daemon's own logs."""
