"""The output limit of a chat completion on a model with a configured ``max_output_tokens``.

(A request that sets no limit gets the model's own: tests/integration/api/test_openai_batches.py.)
"""

from __future__ import annotations

import openai
import pytest
from harness import sim_config
from openai_sdk import MakeSdk

#: Capped as examples/demo.toml caps its model.
CAPPED = (
    '\n[[models]]\nname = "capped"\nengine = "simulated"\nlatency_ms = 1\n'
    "max_output_tokens = 2048\n"
)


@pytest.fixture
def server_config() -> str:
    return sim_config(extra_models=CAPPED)


async def test_max_completion_tokens_over_the_cap_names_that_field(make_sdk: MakeSdk) -> None:
    """``max_completion_tokens`` over the cap is refused with ``param: "max_completion_tokens"``,
    the field the client sent (the only limit newer OpenAI code sends), not ``max_tokens``:
    OpenAI's ``param`` names the request's own field."""
    client = await make_sdk()
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(
            model="capped",
            messages=[{"role": "user", "content": "hello"}],
            max_completion_tokens=5000,
        )
    assert caught.value.param == "max_completion_tokens", caught.value.body
    assert "max_completion_tokens" in caught.value.message, caught.value.body
