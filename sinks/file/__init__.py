"""The ``file`` sink: whole lines appended, logrotate and ``tail -F`` survived, own rotation."""

from logfan.sinks.file.sink import FileSink

__all__ = ["FileSink"]
