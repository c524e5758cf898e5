# lwdock: two commands on a fresh machine -- `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.install-stamp
# torch first, pinned to the local CPU wheel: any other spec downloads a CUDA build.
TORCH  := torch==2.13.0
PIP    := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: install sandbox-tool test-services test test-fast demo bench samples lint clean

install: sandbox-tool $(STAMP)

# Learnware code runs only under bubblewrap (docs/sandbox.md). Installed here when it is
# missing and this is root on a Debian-like machine; otherwise a warning says what to do.
sandbox-tool:
	@command -v bwrap >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing bubblewrap (the sandbox for learnware code)"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -q bubblewrap >/dev/null 2>&1 || \
	      { apt-get update -q >/dev/null && apt-get install -y -q bubblewrap >/dev/null; } || \
	      echo "warning: could not install bubblewrap; lwdock will refuse to run learnware code" >&2; \
	  else \
	    echo "warning: bubblewrap (bwrap) is not installed: lwdock will refuse to run learnware code;" \
	         "install it (apt-get install bubblewrap) or see docs/sandbox.md" >&2; \
	  fi; }

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install $(TORCH)
	$(PIP) install -e '.[dev,text,dask,team]'
	touch $(STAMP)

# The team-dock tests start a private PostgreSQL server (tests/_pgserver.py: initdb + pg_ctl as the
# postgres user, on a free port, removed afterwards); its binaries come from Debian's package.
# Debian's package would also create and start a cluster on port 5432: we never use it, so it is not created.
test-services:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing PostgreSQL server binaries (for the team-dock tests)"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    mkdir -p /etc/postgresql-common && echo "create_main_cluster = false" >> /etc/postgresql-common/createcluster.conf; \
	    apt-get install -y -q --no-install-recommends postgresql >/dev/null 2>&1 || \
	      { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends postgresql >/dev/null; } || \
	      echo "warning: could not install postgresql; the team-dock tests will be skipped (fail under .ci/run)" >&2; \
	  else \
	    echo "warning: PostgreSQL server binaries missing: the team-dock tests will be skipped" >&2; \
	  fi; }

# Two pytest-xdist workers (CI has 2 cores): the CLI tests run on a local and on a team dock, and
# one process would take ~15 min. Each worker starts its own PostgreSQL and S3 servers (free ports,
# its own /tmp directories). loadfile: a test file runs on one worker, its local and team variants
# being two units (tests/conftest.py). `make test TEST_WORKERS=0` runs everything in one process.
TEST_WORKERS ?= 2
XDIST := $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)

test: install test-services
	$(BIN)/python -m pytest tests $(XDIST)

# while working: skips the tests marked slow (CI's `make test` runs them all)
test-fast: install test-services
	$(BIN)/python -m pytest tests -m "not slow" $(XDIST)

demo: install
	$(BIN)/python examples/demo.py

bench: install
	$(PIP) install -e '.[dev,text,team,bench,dask]'
	$(BIN)/python benchmarks/run_all.py

samples: install
	$(BIN)/python sample_learnwares/build.py

lint: install
	$(BIN)/ruff check lwdock tests benchmarks examples sample_learnwares

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
