"""The client libraries' structured flows on the embedded model, by base URL: what
``test_structured_clients.py`` checks on the simulated engine, answered here by SmolLM2
under grammar (the answers are the model's, their shape the grammar's), so each library's own
validation of the answer must pass: LangChain (``with_structured_output`` both ways,
``bind_tools`` forced then answered), pydantic-ai (tool output and ``NativeOutput``) and
instructor (``response_model`` through tools).

The model is served under the names the libraries need (``claude-sonnet-4-5`` makes
pydantic-ai use ``output_config.format``) as aliases of the one embedded model.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import anthropic
import instructor
import pydantic
import pytest
from harness import ServerProcess, add_key
from langchain_anthropic import ChatAnthropic
from pydantic_ai import Agent, NativeOutput
from pydantic_ai.models.anthropic import AnthropicModel
from pydantic_ai.providers.anthropic import AnthropicProvider
from structured_flows import CLAUDE, PROMPT, forced_call_then_answer

pytestmark = pytest.mark.local_model


class Triage(pydantic.BaseModel):
    """A ticket's triage, with the bounds a pydantic user writes (some of them reach the
    model only as description hints, through the SDK's ``transform_schema``)."""

    category: Literal["billing", "bug", "account"]
    priority: int = pydantic.Field(ge=1, le=5, description="1 is the most urgent")
    summary: str = pydantic.Field(max_length=80)
    tags: list[str] = pydantic.Field(default_factory=list, max_length=3)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    workdir: Path = tmp_path_factory.mktemp("clients-local")
    config = (
        '[[models]]\nname = "smollm2-135m"\nengine = "local"\n'
        f'aliases = ["{CLAUDE}"]\nmax_output_tokens = 256\n'
    )
    process = ServerProcess(workdir, f"sqlite:///{workdir / 'batchyard.db'}", config)
    process.start(timeout=180)
    yield process
    process.stop()


@pytest.fixture(scope="module")
def key(server: ServerProcess) -> str:
    return add_key(server.db_url, "ws-clients-local")


def chat(server: ServerProcess, key: str) -> ChatAnthropic:
    return ChatAnthropic(  # type: ignore[call-arg]
        model="smollm2-135m",
        api_key=key,
        base_url=server.base_url,
        max_retries=0,
        max_tokens=160,
        temperature=0,
    )


@pytest.mark.parametrize("method", ["function_calling", "json_schema"])
def test_langchain_with_structured_output(server: ServerProcess, key: str, method: str) -> None:
    structured = chat(server, key).with_structured_output(Triage, method=method)  # type: ignore[arg-type]
    assert isinstance(structured.invoke(PROMPT), Triage)


def test_langchain_bind_tools_forced_call_then_answer(server: ServerProcess, key: str) -> None:
    answered = forced_call_then_answer(chat(server, key))
    assert answered.content or answered.tool_calls


def agent_model(server: ServerProcess, key: str, name: str) -> AnthropicModel:
    return AnthropicModel(name, provider=AnthropicProvider(api_key=key, base_url=server.base_url))


def test_pydantic_ai_tool_output(server: ServerProcess, key: str) -> None:
    agent = Agent(agent_model(server, key, "smollm2-135m"), output_type=Triage)
    assert isinstance(agent.run_sync(PROMPT, model_settings={"max_tokens": 160}).output, Triage)


def test_pydantic_ai_native_output(server: ServerProcess, key: str) -> None:
    agent = Agent(agent_model(server, key, CLAUDE), output_type=NativeOutput(Triage))
    result = agent.run_sync(PROMPT, model_settings={"max_tokens": 160})
    assert isinstance(result.output, Triage)


def test_instructor_response_model(server: ServerProcess, key: str) -> None:
    sdk = anthropic.Anthropic(api_key=key, base_url=server.base_url, max_retries=0)
    client = instructor.from_anthropic(sdk, mode=instructor.Mode.ANTHROPIC_TOOLS)
    triage = client.messages.create(
        model="smollm2-135m",
        # The whole of the server's cap: instructor samples (it sends no temperature), and
        # three free-length tags drawn at temperature 1 ran past 160 tokens once in CI.
        max_tokens=256,
        messages=[{"role": "user", "content": PROMPT}],
        response_model=Triage,
        max_retries=0,
    )
    assert isinstance(triage, Triage)
