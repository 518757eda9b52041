"""The ``logfan`` command: run, emit, tail, check, status, reload, dead, sinks; no tracebacks."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from logfan.daemon.broker.credentials import readable_by_others
from logfan.daemon.broker.url import (
    BrokerURLError,
    has_password,
    node_urls,
    parse_broker_url,
    redact,
)
from logfan.daemon.config.loader import BrokerConfig, Config, config_path, load_config
from logfan.daemon.config.sink import SinkConfig
from logfan.daemon.errors import ConfigError, EmitError, LogfanError

if TYPE_CHECKING:
    from logfan.daemon.consume.selection import Selection


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="logfan", description="A log-fanout daemon: every line reaches every sink."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    config_help = "config file (default: $LOGFAN_CONFIG, else /etc/logfan/logfan.yaml)"

    run = sub.add_parser("run", help="run the daemon in the foreground")
    run.add_argument("-c", "--config", help=config_help)
    run.add_argument("--log-format", choices=("auto", "json", "console"), default="auto")
    run.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))

    check = sub.add_parser("check", help="validate a config file; exit 0 if it is valid")
    check.add_argument("-c", "--config", help=config_help)
    check.add_argument(
        "--probe",
        action="store_true",
        help="also connect to the broker and open every sink (files, sockets) once",
    )

    reload_cmd = sub.add_parser(
        "reload", help="have the running daemon reload its config; exit 1 if it refuses it"
    )
    reload_cmd.add_argument("-c", "--config", help=config_help)
    reload_cmd.add_argument(
        "--pid", type=int, default=None, help="the daemon's pid (default: from its status file)"
    )
    reload_cmd.add_argument(
        "--timeout", type=float, default=60.0, metavar="SECONDS", help="how long to wait (60)"
    )

    sinks_cmd = sub.add_parser("sinks", help="the installed sink types, or one type's options")
    sinks_cmd.add_argument("type", nargs="?", help="a sink type: its options and their defaults")

    status_cmd = sub.add_parser("status", help="a table per sink, from the broker and the daemon")
    status_cmd.add_argument("-c", "--config", help=config_help)

    dead = sub.add_parser("dead", help="list a sink's dead-lettered lines, or replay them")
    dead.add_argument("-c", "--config", help=config_help)
    dead.add_argument("sink", help="the sink's name in the config")
    dead.add_argument(
        "--replay", action="store_true", help="send them back to this sink's queue only"
    )
    dead.add_argument("--limit", type=int, default=None, metavar="N", help="at most N messages")

    emit = sub.add_parser("emit", help="publish lines: the words given, or stdin line by line")
    emit.add_argument("-c", "--config", help=config_help)
    emit.add_argument("-u", "--url", help="broker URL (overrides the config's broker.url)")
    emit.add_argument("-x", "--exchange", help="exchange (overrides the config's)")
    emit.add_argument("-t", "--tag", default=None, help="tag of every line (default: user name)")
    emit.add_argument("-p", "--severity", default="info", help="severity: info, err, 3, ...")
    emit.add_argument(
        "--retry-for",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long to keep retrying unconfirmed lines (default 30)",
    )
    emit.add_argument(
        "--max-line-bytes",
        type=int,
        default=None,
        metavar="N",
        help="cut longer lines with a visible marker (default 65536)",
    )
    emit.add_argument(
        "--plain",
        action="store_true",
        help="publish each line as a plain-text message of its own (body = the line) that any "
        "AMQP consumer can read, instead of envelopes of many lines (logfan's own format); "
        "much slower per line: the broker stores and confirms each line as a message",
    )
    emit.add_argument("message", nargs="*", help="the line to send (default: read stdin)")

    tail = sub.add_parser(
        "tail", help="show the lines going through the exchange now, on a queue of its own"
    )
    tail.add_argument("-c", "--config", help=config_help)
    tail.add_argument("-n", type=int, default=None, metavar="N", help="exit after N lines")
    tail.add_argument(
        "--format",
        default=None,
        metavar="TEMPLATE",
        help="each line's text (default: '{timestamp} {host} {tag}[{pid}] {severity}: {message}')",
    )
    tail.add_argument(
        "--buffer",
        type=int,
        default=None,
        metavar="N",
        help="messages kept for a slow output, the oldest dropped first (default 1000)",
    )
    tail.add_argument(
        "--select",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="show only these lines, as a sink's select: min_severity=err, tags='nginx*,cron', "
        "match=REGEX ... (repeatable)",
    )
    tail.add_argument(
        "--sink", metavar="NAME", help="show only the lines this sink of the config writes"
    )
    return parser


def _check(args: argparse.Namespace) -> int:
    config = load_config(config_path(args.config))
    names = ", ".join(f"{s.name} ({s.type})" for s in config.sinks)
    print(f"{config.path}: OK: {len(config.sinks)} sink(s): {names}")
    for warning in [*_secret_warnings(config), *_cluster_warnings(config)]:
        print(f"{config.path}: warning: {warning}")
    if not args.probe:
        return 0
    from logfan.daemon.ops.probe import probe  # noqa: PLC0415 - only --probe needs kombu

    failures = 0
    for what, problem in probe(config):
        print(f"{what}: {'OK' if problem is None else 'FAILED: ' + problem}")
        failures += problem is not None
    return 1 if failures else 0


def _secret_warnings(config: Config) -> list[str]:
    warnings = []
    if has_password(config.broker.url) and readable_by_others(config.path):
        warnings.append(
            "the broker URL holds a password and this file is readable by other users: "
            f"chmod o-r {config.path}, or move the password to broker.password_file"
        )
    secret_file = config.broker.credentials.password_file
    if secret_file and readable_by_others(secret_file):
        warnings.append(f"broker.password_file {secret_file} is readable by other users")
    return warnings


def _cluster_warnings(config: Config) -> list[str]:
    nodes = len(node_urls(config.broker.url))
    classic = [s.name for s in config.sinks if s.queue_type == "classic"]
    if nodes > 1 and classic:
        return [
            f"broker.url lists {nodes} nodes but sink(s) {', '.join(classic)} use classic "
            "queues, which live on one node and lose lines when it goes away: set "
            "queue_type: quorum"
        ]
    return []


def _status(args: argparse.Namespace) -> int:
    from logfan.daemon.ops.status import status_report  # noqa: PLC0415

    table, notes = status_report(load_config(config_path(args.config)))
    print(table)
    for note in notes:
        print(note)
    return 1 if any(n.startswith("broker:") for n in notes) else 0


def _reload(args: argparse.Namespace) -> int:
    from logfan.daemon.ops.reload import reload_daemon, status_file_of  # noqa: PLC0415

    print(reload_daemon(status_file_of(config_path(args.config)), args.pid, args.timeout))
    return 0


def _sinks(args: argparse.Namespace) -> int:
    from logfan.daemon.ops.sinktypes import list_types, show_type  # noqa: PLC0415
    from logfan.sinks.base import SinkConfigError  # noqa: PLC0415

    try:
        print(show_type(args.type) if args.type else list_types())
    except (LookupError, SinkConfigError) as exc:
        raise LogfanError(str(exc)) from None
    return 0


def _dead(args: argparse.Namespace) -> int:
    from logfan.daemon.consume import deadletter  # noqa: PLC0415 - emit and check stay light
    from logfan.sinks.template import Template, control_filter  # noqa: PLC0415

    config = load_config(config_path(args.config))
    sinks = {s.name: s for s in config.sinks}
    if args.sink not in sinks:
        names = ", ".join(sinks)
        raise LogfanError(f"no sink {args.sink!r} in {config.path}; its sinks are: {names}")
    sink = sinks[args.sink]
    try:
        if args.replay:
            lines = deadletter.replay_dead(config.broker, sink, args.limit)
            print(f"replayed {lines} line(s) from {sink.dead_queue} to {sink.queue}")
            return 0
        entries = deadletter.list_dead(config.broker, sink, args.limit)
    except LogfanError:
        raise
    except Exception as exc:  # noqa: BLE001 - a broker failure is the user's to read, not ours
        from logfan.daemon.broker.failure import explain  # noqa: PLC0415

        url = redact(config.broker.url)
        reason = explain(exc, config.broker).reason
        raise LogfanError(f"the broker at {url} failed: {reason}") from None
    template = Template("{timestamp} {host} {tag}[{pid}] {severity}: {message}")
    clean = control_filter("escape")
    for record, reason in entries:
        print(f"{template.render(record, clean)}\t# {clean(reason)}")
    print(f"{len(entries)} dead-lettered line(s) in {sink.dead_queue}", file=sys.stderr)
    return 0


def _run(args: argparse.Namespace) -> int:
    # A stop asked for while starting up is kept, not fatal: the supervisor honours it.
    early: list[int] = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda n, _frame: early.append(n))
    from logfan.daemon.run import logs  # noqa: PLC0415 - emit and check stay light
    from logfan.daemon.run.supervisor import Supervisor  # noqa: PLC0415

    json_output = {"auto": None, "json": True, "console": False}[args.log_format]
    log_options = {"json_output": json_output, "level": args.log_level}
    logs.configure(**log_options)
    supervisor = Supervisor(load_config(config_path(args.config)), log_options=log_options)
    return supervisor.run(early[0] if early else None)


def _emit_config(args: argparse.Namespace) -> tuple[BrokerConfig, list[SinkConfig]]:
    path = config_path(args.config)
    config: Config | None = None
    if args.config or os.environ.get("LOGFAN_CONFIG") or os.path.exists(path) or not args.url:
        config = load_config(path)
    broker = config.broker if config else BrokerConfig()
    sinks = list(config.sinks) if config else []
    overrides = {}
    if args.url:
        overrides["url"] = args.url
        overrides["url_source"] = "--url"
        if has_password(args.url):
            print(
                "logfan emit: warning: a password in --url is visible to every user in the "
                "process list; put it in a config with broker.password_env or password_file",
                file=sys.stderr,
            )
    if args.exchange:
        overrides["exchange"] = args.exchange
    if overrides:
        from dataclasses import replace  # noqa: PLC0415

        try:
            parse_broker_url(overrides.get("url", broker.url))
        except BrokerURLError as exc:
            raise LogfanError(f"--url: {exc}") from None
        broker = replace(broker, **overrides)
    return broker, sinks


def _emit(args: argparse.Namespace) -> int:
    from logfan.daemon.emit.emitter import Emitter, plain_body  # noqa: PLC0415
    from logfan.daemon.emit.reader import LineReader  # noqa: PLC0415
    from logfan.sinks.base import normalize_severity  # noqa: PLC0415
    from logfan.sinks.truncation import MAX_LINE_BYTES, truncate_text  # noqa: PLC0415

    severity = normalize_severity(args.severity)
    if severity is None:
        raise LogfanError(
            f"-p: unknown severity {args.severity!r}; use emerg, alert, crit, err, warning, "
            "notice, info, debug or 0-7"
        )
    max_line = args.max_line_bytes or MAX_LINE_BYTES
    if max_line < 64:
        raise LogfanError(f"--max-line-bytes: expected at least 64, got {max_line}")
    if args.retry_for < 0:
        raise LogfanError(f"--retry-for: expected a number of seconds >= 0, got {args.retry_for}")
    tag = args.tag or os.environ.get("USER") or "logfan"
    if args.plain and len(plain_body(tag)) > 255:
        raise LogfanError("-t: with --plain the tag is the AMQP app_id: at most 255 bytes")
    broker, sinks = _emit_config(args)
    emitter = Emitter(
        broker, sinks, tag=tag, severity=severity, retry_for=args.retry_for, plain=args.plain
    )
    read = truncated = 0
    # stdin is read only when no MESSAGE is given (it may be closed, or not a file at all)
    reader = None if args.message else LineReader(sys.stdin.fileno(), max_line)
    try:
        if reader is None:
            from logfan.daemon.envelope import now_timestamp  # noqa: PLC0415

            read = 1
            line, cut = truncate_text(" ".join(args.message), max_line)
            truncated = int(cut > 0)
            emitter.send([(now_timestamp(), line)])
        else:
            for lines in reader.envelopes():
                read += len(lines)
                emitter.send(lines)
                if reader.paused:
                    # The input paused (an interactive pipe): have what was sent confirmed now,
                    # not left open while the emitter blocks reading and misses heartbeats.
                    emitter.flush()
        emitter.flush()
    except EmitError as exc:
        lost = read - emitter.confirmed
        raise LogfanError(f"{lost} line(s) not confirmed: {exc}") from None
    finally:
        emitter.close()
        truncated = truncated if reader is None else reader.truncated
        if truncated:
            print(
                f"logfan emit: {truncated} line(s) longer than {max_line} bytes were "
                "truncated (marked ...[truncated N bytes])",
                file=sys.stderr,
            )
    return 0


def _tail(args: argparse.Namespace) -> int:
    from logfan.daemon.ops import tail  # noqa: PLC0415 - emit and check stay light

    template = tail.template_of(tail.DEFAULT_FORMAT if args.format is None else args.format)
    if args.n is not None and args.n < 1:
        raise LogfanError(f"-n: expected a number of lines >= 1, got {args.n}")
    buffer = tail.DEFAULT_BUFFER if args.buffer is None else args.buffer
    if buffer < 1:
        raise LogfanError(f"--buffer: expected a number of messages >= 1, got {buffer}")
    config = load_config(config_path(args.config))
    selection = _tail_selection(args, config)
    accepts = tail.accept_all if selection is None else tail.selected_by(selection)
    shown = tail.Tail(template, tail.Output(1), limit=args.n, accepts=accepts)  # fd 1: stdout
    return tail.run_tail(
        config.broker,
        shown,
        host=config.daemon.host,
        buffer=buffer,
        announce=tail.stderr_announce,
    )


def _tail_selection(args: argparse.Namespace, config: Config) -> Selection | None:
    """``--sink NAME`` (that sink's select) or ``--select KEY=VALUE ...``; not both."""
    from logfan.daemon.consume.selection import parse_selection  # noqa: PLC0415
    from logfan.sinks.options import OptionError, OptionReader  # noqa: PLC0415

    if args.sink is not None:
        if args.select:
            raise LogfanError("give --sink or --select, not both")
        sinks = {s.name: s for s in config.sinks}
        if args.sink not in sinks:
            names = ", ".join(sinks)
            raise LogfanError(f"--sink: no sink {args.sink!r} in {config.path}; its sinks: {names}")
        return sinks[args.sink].select
    given: dict[str, object] = {}
    for item in args.select:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise LogfanError(
                f"--select: expected KEY=VALUE such as min_severity=err, got {item!r}"
            )
        if key in ("tags", "exclude_tags"):
            given[key] = [glob for glob in value.split(",") if glob]
        else:
            given[key] = value
    if not given:
        return None
    try:
        return parse_selection(OptionReader(given))
    except OptionError as exc:
        raise LogfanError(f"--select {exc.key}: {exc.reason}") from None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``logfan`` console script."""
    args = _parser().parse_args(argv)
    handlers = {
        "run": _run,
        "check": _check,
        "emit": _emit,
        "tail": _tail,
        "dead": _dead,
        "status": _status,
        "reload": _reload,
        "sinks": _sinks,
    }
    handler = handlers[args.command]
    try:
        return handler(args)
    except ConfigError as exc:
        print(f"logfan {args.command}: {exc}", file=sys.stderr)
        return 1
    except LogfanError as exc:
        print(f"logfan {args.command}: {exc}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 141


if __name__ == "__main__":
    sys.exit(main())
