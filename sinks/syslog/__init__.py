"""The ``syslog`` sink: RFC 5424 or RFC 3164 messages over UDP, TCP, TLS or a unix socket."""

from logfan.sinks.syslog.sink import SyslogSink

__all__ = ["SyslogSink"]
