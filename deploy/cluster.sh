#!/usr/bin/env bash
# A three-node RabbitMQ cluster on one machine, for trying logfan out on a cluster.
#
#   deploy/cluster.sh start            # write the nodes' folders (first time), start the three
#                                      # nodes, cluster them, print the broker section for logfan
#   deploy/cluster.sh status           # cluster_status, and the queues with their type and leader
#   deploy/cluster.sh stop-node 1      # stop one node gracefully (start-node 1 brings it back)
#   deploy/cluster.sh kill-node 1      # SIGKILL one node's Erlang VM, like a crash
#   deploy/cluster.sh ctl 2 list_queues name type leader members
#   deploy/cluster.sh stop             # stop every node; data kept, `start` resumes
#   deploy/cluster.sh destroy          # stop every node and delete the cluster's folder
#
# Everything lives under one folder (LOGFAN_CLUSTER_DIR, default var/cluster in the checkout):
# per node a HOME holding the cluster's Erlang cookie, rabbitmq.conf, an empty enabled_plugins,
# the data (mnesia, quorum queue logs), the node's logs and its server output. Nothing under
# /etc/rabbitmq or /var/lib/rabbitmq is read or written, and a RabbitMQ already running on the
# machine (rabbit@HOST on 5672/25672) is never touched: the nodes have names, ports and a cookie
# of their own. The nodes listen on 127.0.0.1 only, user guest/guest (allowed from loopback).
#
# Settings (environment; read by `init`, which `start` runs, and kept in each node's node.env):
#   LOGFAN_CLUSTER_DIR         the folder (default: var/cluster next to deploy/)
#   LOGFAN_CLUSTER_NAME        node name prefix: nodes are NAME-1@HOST ... (default: logfan)
#   LOGFAN_CLUSTER_NODES       how many nodes (default: 3; 1 gives a single node alike)
#   LOGFAN_CLUSTER_PORTS       AMQP ports, one per node (default: "5681 5682 5683")
#   LOGFAN_CLUSTER_DIST_PORTS  Erlang distribution ports (default: "25681 25682 25683"); the
#                              command line tools use the distribution port + 10000
#   LOGFAN_RABBITMQ_BIN        folder of rabbitmq-server and rabbitmqctl (default:
#                              /usr/lib/rabbitmq/bin, Debian's, whose scripts do not switch user)
#   LOGFAN_CLUSTER_ERL_ARGS    extra Erlang VM flags (default: "+S 1:1 +sbwt none +sbwtdcpu none
#                              +sbwtdio none": one scheduler, no busy waiting: three nodes share
#                              a small machine)
#
# The tests (tests/rabbitcluster.py) use this script: `init` writes the nodes' folders,
# `run-node N` runs one node in the foreground (the tests supervise it), `join` clusters them.
#
# Clustering is done the documented way, on each node but the first:
#   rabbitmqctl -n NODE stop_app; rabbitmqctl -n NODE join_cluster FIRST; rabbitmqctl -n NODE start_app
# A node that was stopped rejoins its cluster by itself when started again.
set -euo pipefail

SELF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
DIR="${LOGFAN_CLUSTER_DIR:-$(dirname "$(dirname "$SELF")")/var/cluster}"
BIN="${LOGFAN_RABBITMQ_BIN:-/usr/lib/rabbitmq/bin}"
MARKER=".logfan-cluster"

die() { echo "cluster.sh: $*" >&2; exit 1; }

usage() {
    sed -n '2,/^set -euo/p' "$SELF" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
}

# -- the nodes' folders --------------------------------------------------------------------------

count() {
    if [[ -f "$DIR/$MARKER" ]]; then
        cat "$DIR/$MARKER"
    else
        echo "${LOGFAN_CLUSTER_NODES:-3}"
    fi
}

node_dir() { echo "$DIR/node$1"; }

check_node() {
    if ! [[ "$1" =~ ^[0-9]+$ ]] || (("$1" < 1 || "$1" > $(count))); then
        die "no node '$1': nodes are 1 to $(count)"
    fi
    [[ -f "$(node_dir "$1")/node.env" ]] || die "no cluster in $DIR (run: $0 start)"
}

# Node N's environment (exported), and none of the caller's RABBITMQ_*, ERL_* or CONF_*.
load_node_env() {
    local var
    for var in $(compgen -e); do
        case "$var" in RABBITMQ_* | ERL_* | CONF_*) unset "$var" ;; esac
    done
    set -a
    # shellcheck disable=SC1091
    . "$(node_dir "$1")/node.env"
    set +a
}

# Run "$@" with node N's environment, in a subshell.
with_node() {
    local n="$1"
    shift
    check_node "$n"
    (
        load_node_env "$n"
        "$@"
    )
}

node_name() { with_node "$1" printenv RABBITMQ_NODENAME; }
node_port() { with_node "$1" printenv RABBITMQ_NODE_PORT; }

port_free() {
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

cmd_init() {
    local n nodes name host cookie ports dist erl_args
    if [[ -f "$DIR/$MARKER" ]]; then
        return 0 # already written: ports, names and cookie stay what they were
    fi
    nodes="${LOGFAN_CLUSTER_NODES:-3}"
    [[ "$nodes" =~ ^[1-9]$ ]] || die "LOGFAN_CLUSTER_NODES must be 1 to 9, got '$nodes'"
    read -r -a ports <<<"${LOGFAN_CLUSTER_PORTS:-5681 5682 5683}"
    read -r -a dist <<<"${LOGFAN_CLUSTER_DIST_PORTS:-25681 25682 25683}"
    ((${#ports[@]} >= nodes && ${#dist[@]} >= nodes)) ||
        die "LOGFAN_CLUSTER_PORTS and LOGFAN_CLUSTER_DIST_PORTS need $nodes port(s) each"
    for ((n = 0; n < nodes; n++)); do
        for port in "${ports[$n]}" "${dist[$n]}"; do
            [[ "$port" =~ ^[0-9]+$ ]] || die "not a port: '$port'"
            port_free "$port" || die "port $port is in use (set LOGFAN_CLUSTER_PORTS/_DIST_PORTS)"
        done
    done
    [[ -x "$BIN/rabbitmq-server" ]] || die "$BIN/rabbitmq-server not found (set LOGFAN_RABBITMQ_BIN)"
    name="${LOGFAN_CLUSTER_NAME:-logfan}"
    [[ "$name" =~ ^[A-Za-z0-9_-]+$ ]] || die "LOGFAN_CLUSTER_NAME: letters, digits, '_', '-'"
    host="$(hostname -s)"
    erl_args="${LOGFAN_CLUSTER_ERL_ARGS:-+S 1:1 +sbwt none +sbwtdcpu none +sbwtdio none}"
    mkdir -p "$DIR"
    cookie="$(od -An -N20 -tx1 /dev/urandom | tr -d ' \n' | tr a-f A-F)"
    for ((n = 1; n <= nodes; n++)); do
        local d
        d="$(node_dir "$n")"
        mkdir -p "$d/home" "$d/log" "$d/mnesia"
        # One cookie for every node of the cluster: the CLI reads it from the same HOME.
        (umask 077 && printf '%s' "$cookie" >"$d/home/.erlang.cookie")
        chmod 0400 "$d/home/.erlang.cookie"
        cat >"$d/rabbitmq.conf" <<EOF
listeners.tcp.local = 127.0.0.1:${ports[$((n - 1))]}
log.console = false
log.file.level = info
# three nodes or more: a node cut off from the majority pauses instead of diverging
cluster_partition_handling = pause_minority
EOF
        echo "[]." >"$d/enabled_plugins"
        : >"$d/rabbitmq-env.conf" # so /etc/rabbitmq/rabbitmq-env.conf is never read
        cat >"$d/node.env" <<EOF
# node $n of the cluster in $DIR, written by deploy/cluster.sh init; sourced by the script
HOME='$d/home'
RABBITMQ_NODENAME='$name-$n@$host'
RABBITMQ_NODE_IP_ADDRESS='127.0.0.1'
RABBITMQ_NODE_PORT='${ports[$((n - 1))]}'
RABBITMQ_DIST_PORT='${dist[$((n - 1))]}'
RABBITMQ_CONF_ENV_FILE='$d/rabbitmq-env.conf'
RABBITMQ_CONFIG_FILE='$d/rabbitmq.conf'
RABBITMQ_ADVANCED_CONFIG_FILE='$d/advanced.config'
RABBITMQ_ENABLED_PLUGINS_FILE='$d/enabled_plugins'
RABBITMQ_MNESIA_BASE='$d/mnesia'
RABBITMQ_LOG_BASE='$d/log'
RABBITMQ_PID_FILE='$d/rabbitmq.pid'
ERL_CRASH_DUMP='$d/erl_crash.dump'
RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS='$erl_args -kernel inet_dist_use_interface {127,0,0,1}'
EOF
    done
    echo "$nodes" >"$DIR/$MARKER"
}

# -- one node ------------------------------------------------------------------------------------

ctl() {
    local n="$1"
    shift
    check_node "$n"
    with_node "$n" "$BIN/rabbitmqctl" -q -n "$(node_name "$n")" "$@"
}

# The pid of node N's server script (run-node), if it runs: checked by its environment, so a
# reused pid is never taken for the node.
run_pid() {
    local pid file name
    file="$(node_dir "$1")/run.pid"
    [[ -f "$file" ]] || return 1
    pid="$(cat "$file")"
    name="$(node_name "$1")"
    [[ -r "/proc/$pid/environ" ]] || return 1
    tr '\0' '\n' <"/proc/$pid/environ" | grep -qx "RABBITMQ_NODENAME=$name" || return 1
    echo "$pid"
}

cmd_run_node() {
    local n="$1"
    check_node "$n"
    echo $$ >"$(node_dir "$n")/run.pid" # exec keeps the pid: it is the server script's
    cd "$(node_dir "$n")"
    load_node_env "$n"
    exec "$BIN/rabbitmq-server"
}

launch() {
    local n="$1"
    if run_pid "$n" >/dev/null; then
        return 0
    fi
    port_free "$(node_port "$n")" || die "node $n: port $(node_port "$n") is taken by another program"
    # setsid: the node outlives this shell and the terminal it runs in
    setsid "$SELF" run-node "$n" >>"$(node_dir "$n")/server.out" 2>&1 </dev/null &
}

wait_ready() {
    local n="$1" deadline=$((SECONDS + ${2:-120}))
    until ctl "$n" await_startup --timeout 10 >/dev/null 2>&1; do
        if ! run_pid "$n" >/dev/null; then
            tail -n 20 "$(node_dir "$n")/server.out" >&2 || true
            die "node $n ($(node_name "$n")) exited while starting; see $(node_dir "$n")/log"
        fi
        ((SECONDS < deadline)) || die "node $n not up after ${2:-120} s; see $(node_dir "$n")/log"
        sleep 1
    done
}

cmd_start_node() {
    check_node "$1"
    launch "$1"
    wait_ready "$1"
    echo "node $1 ($(node_name "$1")) running on 127.0.0.1:$(node_port "$1")"
}

cmd_stop_node() {
    local n="$1" pid
    check_node "$n"
    pid="$(run_pid "$n")" || {
        echo "node $n is not running"
        return 0
    }
    # graceful: queues and messages are flushed; waits until the VM has exited
    ctl "$n" stop "$(node_dir "$n")/rabbitmq.pid" >/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    echo "node $n ($(node_name "$n")) stopped"
}

cmd_kill_node() {
    local n="$1" pid beam
    check_node "$n"
    pid="$(run_pid "$n")" || {
        echo "node $n is not running"
        return 0
    }
    beam="$(cat "$(node_dir "$n")/rabbitmq.pid" 2>/dev/null || true)"
    if [[ -n "$beam" ]] && [[ "$(awk '{print $4}' "/proc/$beam/stat" 2>/dev/null)" == "$pid" ]]; then
        kill -KILL "$beam"
    else
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" # not booted yet: its group
    fi
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    echo "node $n ($(node_name "$n")) killed"
}

# -- the cluster ---------------------------------------------------------------------------------

cmd_join() {
    local n first
    first="$(node_name 1)"
    for ((n = 2; n <= $(count); n++)); do
        if ctl "$n" cluster_status --formatter json | grep -q "\"$first\""; then
            continue # already a member
        fi
        ctl "$n" stop_app >/dev/null
        ctl "$n" join_cluster "$first" >/dev/null
        ctl "$n" start_app >/dev/null
    done
}

cmd_urls() {
    local n
    echo "broker:"
    echo "  url:"
    for ((n = 1; n <= $(count); n++)); do
        echo "    - amqp://guest:guest@127.0.0.1:$(node_port "$n")//"
    done
    if (($(count) > 1)); then
        echo "  queue_type: quorum        # in a cluster, always"
    fi
}

cmd_start() {
    local n
    cmd_init
    for ((n = 1; n <= $(count); n++)); do launch "$n"; done
    for ((n = 1; n <= $(count); n++)); do wait_ready "$n"; done
    cmd_join
    echo "cluster of $(count) node(s) running in $DIR; for logfan's config:"
    echo
    cmd_urls
}

cmd_stop() {
    local n
    [[ -f "$DIR/$MARKER" ]] || return 0
    for ((n = $(count); n >= 1; n--)); do cmd_stop_node "$n"; done
}

cmd_status() {
    local n
    for ((n = 1; n <= $(count); n++)); do
        if run_pid "$n" >/dev/null; then
            ctl "$n" cluster_status
            echo
            ctl "$n" list_queues name type messages consumers leader members
            return 0
        fi
    done
    echo "no node of $DIR is running"
}

cmd_destroy() {
    [[ -d "$DIR" ]] || return 0
    [[ -f "$DIR/$MARKER" ]] || die "$DIR was not made by this script; not deleting it"
    cmd_stop
    rm -rf -- "$DIR"
    echo "deleted $DIR"
}

main() {
    local command="${1:-help}"
    shift || true
    case "$command" in
    init) cmd_init ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    urls) cmd_urls ;;
    join) cmd_join ;;
    destroy) cmd_destroy ;;
    start-node | stop-node | kill-node | run-node)
        (($# == 1)) || die "usage: $0 $command N"
        "cmd_${command//-/_}" "$1"
        ;;
    ctl)
        (($# >= 2)) || die "usage: $0 ctl N COMMAND [ARGS...]"
        ctl "$@"
        ;;
    help | -h | --help) usage ;;
    *) die "unknown command '$command' (try: $0 help)" ;;
    esac
}

main "$@"
