# logfan: `make run` runs the daemon on the embedded broker; `make test` runs the whole suite;
# `make test-fast` runs the fast tier (tests/unit: no broker, no daemon, under a minute).
# They set up everything they need on a fresh machine (Debian packages only when run as root).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
CONFIG ?= conf/logfan.yaml
# Debian packages the test suite uses (installed only if missing, only as root).
TEST_DEBS := rabbitmq-server logrotate coreutils util-linux procps libsystemd-dev pkg-config gcc systemd syslog-ng-core openssl python3-venv python3-dev passwd

.PHONY: run test test-fast venv test-venv debs rabbitmq rsyslog prometheus lint typecheck docs pytest bench clean

# pip compiles what it installs but not an editable install's links: compileall does, so that a
# `logfan` command does not compile its modules at every start (PYTHONDONTWRITEBYTECODE or not).
$(BIN)/logfan: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e . --config-settings editable_mode=strict
	$(BIN)/python -m compileall -q build
	touch $@

venv: $(BIN)/logfan

run: venv
	$(BIN)/logfan run -c $(CONFIG)

test-venv:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,systemd,docs]' --config-settings editable_mode=strict
	$(BIN)/pip install -q ./tests/plugins/logfan-testsinks
	$(BIN)/pip install -q ./examples/logfan-http
	$(BIN)/python -m compileall -q build

debs:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  missing=$$(for p in $(TEST_DEBS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	  if [ -n "$$missing" ]; then \
	    echo "installing Debian packages: $$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  fi; \
	else echo "not root: skipping Debian packages ($(TEST_DEBS))"; fi

rabbitmq:
	@if command -v rabbitmqctl >/dev/null; then \
	  if ! timeout 30 rabbitmqctl -q status >/dev/null 2>&1; then \
	    echo "starting RabbitMQ"; rabbitmq-server -detached; \
	    timeout 120 rabbitmqctl -q await_startup; \
	  fi; \
	else echo "RabbitMQ is not installed: the RabbitMQ tests will fail"; fi

# rsyslog conflicts with syslog-ng-core as a Debian package, so the tests run it unpacked.
RSYSLOG := $(VENV)/rsyslog
RSYSLOG_DEBS := rsyslog rsyslog-openssl libestr0 libfastjson4

rsyslog: $(RSYSLOG)/usr/sbin/rsyslogd

$(RSYSLOG)/usr/sbin/rsyslogd:
	mkdir -p $(RSYSLOG)/debs
	cd $(RSYSLOG)/debs && { apt-get download -qq $(RSYSLOG_DEBS) || \
	  { apt-get update -qq && apt-get download -qq $(RSYSLOG_DEBS); }; }
	for deb in $(RSYSLOG)/debs/*.deb; do dpkg -x $$deb $(RSYSLOG); done
	touch $@

# Prometheus (for the metrics tests), unpacked too: installing the package would start a
# Prometheus server on the machine.
PROMETHEUS := $(VENV)/prometheus

prometheus: $(PROMETHEUS)/usr/bin/prometheus

$(PROMETHEUS)/usr/bin/prometheus:
	mkdir -p $(PROMETHEUS)/debs
	cd $(PROMETHEUS)/debs && { apt-get download -qq prometheus || \
	  { apt-get update -qq && apt-get download -qq prometheus; }; }
	dpkg -x $(PROMETHEUS)/debs/prometheus_*.deb $(PROMETHEUS)
	touch $@

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck:
	$(BIN)/mypy -p logfan.daemon -p logfan.sinks
	$(BIN)/mypy tests $$(ls bench/*.py 2>/dev/null)
	cd tests/plugins/logfan-testsinks && ../../../$(BIN)/mypy --strict logfan_testsinks.py
	cd examples/logfan-http && ../../$(BIN)/mypy --strict logfan_http.py tests

# The docs site: a broken link or anchor fails the build (strict).
docs: venv
	$(BIN)/pip install -q -e '.[docs]' --config-settings editable_mode=strict
	$(BIN)/mkdocs build --strict --quiet --site-dir $(VENV)/site

# Two workers, one test file each at a time: the suite mostly waits (brokers, sockets, timers).
pytest:
	$(BIN)/pytest -n 2 --dist loadfile

test: debs test-venv rabbitmq rsyslog prometheus lint typecheck docs pytest

# The fast tier only: pure functions and sinks on temporary files and local sockets.
test-fast: test-venv
	$(BIN)/pytest -n 2 tests/unit

bench: test-venv rabbitmq
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info var site .mypy_cache .ruff_cache .pytest_cache
