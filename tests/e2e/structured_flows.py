"""What the client-library tests share, on the simulated engine and on the embedded model."""

from __future__ import annotations

from typing import Any, Literal

from langchain_anthropic import ChatAnthropic
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.tools import tool

#: A model name the libraries know (llm's plugin has a fixed list; pydantic-ai reads native
#: structured-output support from the name).
CLAUDE = "claude-sonnet-4-5"
PROMPT = "I was charged twice for my November invoice; please sort this out by Friday."


@tool
def get_weather(city: str, unit: Literal["celsius", "fahrenheit"] = "celsius") -> str:
    """The current weather in a city."""
    return f"18 degrees {unit} in {city}"


def forced_call_then_answer(model: ChatAnthropic) -> Any:
    """LangChain's tool loop: a forced ``get_weather`` call, checked, its result sent back
    as a ``ToolMessage``; returns the model's next answer."""
    question = HumanMessage("What is the weather in Paris?")
    called = model.bind_tools([get_weather], tool_choice="get_weather").invoke([question])
    [call] = called.tool_calls
    assert call["name"] == "get_weather" and isinstance(call["args"]["city"], str)
    result = ToolMessage(get_weather.invoke(call["args"]), tool_call_id=call["id"])
    return model.bind_tools([get_weather]).invoke([question, called, result])
