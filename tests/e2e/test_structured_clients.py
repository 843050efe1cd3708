"""Client libraries that ask for structured answers, pointed at a real ``batchyard serve`` by
base URL and served by the simulated engine: LangChain (``with_structured_output``,
``bind_tools``), pydantic-ai (``Agent`` with an ``output_type``), instructor
(``response_model``) and the ``llm`` CLI (``--schema``).

Each sends what it sends to Anthropic (tool definitions, forced ``tool_choice``,
``output_config.format`` schemas rewritten by the SDK's ``transform_schema``, tool results),
and each must get back a value its own validation accepts. Libraries that only ask for JSON
in the prompt (instructor's JSON modes, pydantic-ai's ``PromptedOutput``) are left out: a
simulated model does not read prompts.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import anthropic
import instructor
import pydantic
import pytest
from harness import LLM_ANTHROPIC_PLUGIN, ServerProcess, add_key, sim_config
from langchain_anthropic import ChatAnthropic
from pydantic_ai import Agent, NativeOutput
from pydantic_ai.models.anthropic import AnthropicModel
from pydantic_ai.providers.anthropic import AnthropicProvider
from structured_flows import CLAUDE, PROMPT, forced_call_then_answer, get_weather


class Customer(pydantic.BaseModel):
    name: str = pydantic.Field(description="Full name")
    email: str | None = None


class Ticket(pydantic.BaseModel):
    """A support ticket, as instructor, pydantic-ai and LangChain users write one."""

    category: Literal["billing", "bug", "account"]
    priority: int = pydantic.Field(ge=1, le=5, description="1 is the most urgent")
    summary: str = pydantic.Field(max_length=120)
    customer: Customer
    tags: list[str] = pydantic.Field(default_factory=list, max_length=5)
    due: datetime.date | None = None


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    workdir: Path = tmp_path_factory.mktemp("clients")
    claude = f'\n[[models]]\nname = "{CLAUDE}"\nengine = "simulated"\n'
    process = ServerProcess(
        workdir, f"sqlite:///{workdir / 'batchyard.db'}", sim_config(extra_models=claude)
    )
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def key(server: ServerProcess) -> str:
    return add_key(server.db_url, "ws-clients")


def chat(server: ServerProcess, key: str, model: str = "sim") -> ChatAnthropic:
    return ChatAnthropic(  # type: ignore[call-arg]
        model=model, api_key=key, base_url=server.base_url, max_retries=0, max_tokens=1024
    )


@pytest.mark.parametrize("method", ["function_calling", "json_schema"])
def test_langchain_with_structured_output(server: ServerProcess, key: str, method: str) -> None:
    """``function_calling`` forces a tool whose schema is the model's; ``json_schema`` sends
    ``output_config.format`` (through the SDK's ``transform_schema``)."""
    structured = chat(server, key).with_structured_output(Ticket, method=method)  # type: ignore[arg-type]
    assert isinstance(structured.invoke(PROMPT), Ticket)


def test_langchain_bind_tools_forced_call_then_answer(server: ServerProcess, key: str) -> None:
    answered = forced_call_then_answer(chat(server, key))
    assert not answered.tool_calls and isinstance(answered.content, str)  # type: ignore[attr-defined]
    assert answered.content


def test_langchain_bind_tools_auto_answers_text(server: ServerProcess, key: str) -> None:
    answered = chat(server, key).bind_tools([get_weather]).invoke("Any news?")
    assert not answered.tool_calls and answered.content  # type: ignore[attr-defined]


def agent_model(server: ServerProcess, key: str, name: str = "sim") -> AnthropicModel:
    return AnthropicModel(name, provider=AnthropicProvider(api_key=key, base_url=server.base_url))


def test_pydantic_ai_tool_output(server: ServerProcess, key: str) -> None:
    """The default output mode: a ``final_result`` tool the model must call."""
    result = Agent(agent_model(server, key), output_type=Ticket).run_sync(PROMPT)
    assert isinstance(result.output, Ticket)


def test_pydantic_ai_native_output(server: ServerProcess, key: str) -> None:
    """``output_config.format``, for a model name pydantic-ai knows supports it."""
    agent = Agent(agent_model(server, key, CLAUDE), output_type=NativeOutput(Ticket))
    assert isinstance(agent.run_sync(PROMPT).output, Ticket)


def test_pydantic_ai_agent_runs_its_tools_until_the_output(server: ServerProcess, key: str) -> None:
    """With a function tool beside the output tool the model must call one of them
    (``tool_choice: any``, one drawn per answer); the agent runs the function, sends its
    result back as a ``tool_result``, and goes on until the output tool is called. Over a few
    prompts both happen."""
    agent = Agent(agent_model(server, key), output_type=Ticket)
    calls: list[str] = []

    @agent.tool_plain
    def lookup_invoice(number: str) -> str:
        """An invoice by number."""
        calls.append(number)
        return f"invoice {number}: charged twice"

    for number in range(8):
        result = agent.run_sync(f"Ticket {number}: {PROMPT}")
        assert isinstance(result.output, Ticket)
    assert calls


@pytest.mark.parametrize("mode", [instructor.Mode.TOOLS, instructor.Mode.ANTHROPIC_TOOLS])
def test_instructor_response_model(server: ServerProcess, key: str, mode: instructor.Mode) -> None:
    sdk = anthropic.Anthropic(api_key=key, base_url=server.base_url, max_retries=0)
    client = instructor.from_anthropic(sdk, mode=mode)
    ticket = client.messages.create(
        model="sim",
        max_tokens=1024,
        messages=[{"role": "user", "content": PROMPT}],
        response_model=Ticket,
        max_retries=0,
    )
    assert isinstance(ticket, Ticket)


def test_llm_cli_schema(server: ServerProcess, key: str, tmp_path: Path) -> None:
    """``llm --schema``: the Anthropic plugin takes the base URL from ``ANTHROPIC_BASE_URL``
    (read by the SDK it builds its client with; it has no option of its own), and asks this
    model for ``output_config.format``. Only that plugin is loaded (``LLM_LOAD_PLUGINS``): the
    local engine's model package registers an llm plugin that needs llama.cpp."""
    env = {
        **os.environ,
        "PYTHONPATH": str(LLM_ANTHROPIC_PLUGIN),
        "LLM_LOAD_PLUGINS": "llm-anthropic",
        "LLM_USER_PATH": str(tmp_path),
        "ANTHROPIC_BASE_URL": server.base_url,
        "ANTHROPIC_API_KEY": key,
    }
    schema = "name, age int, bio: one sentence"
    completed = subprocess.run(
        [
            str(Path(sys.executable).with_name("llm")),
            "-m",
            f"anthropic/{CLAUDE}",
            "--schema",
            schema,
            PROMPT,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    person = json.loads(completed.stdout)
    assert set(person) == {"name", "age", "bio"}
    assert isinstance(person["name"], str) and isinstance(person["age"], int)
