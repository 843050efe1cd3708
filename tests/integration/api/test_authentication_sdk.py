"""The official SDK's two ways to authenticate, with a wrong key: the error is worded for the
header the SDK used (SDK 2.x sends ``api_key`` as a bearer token too)."""

from __future__ import annotations

import anthropic
import pytest
from inprocess import InProcessServer


@pytest.mark.parametrize("credentials", [{"api_key": "sk-by-wrong"}, {"auth_token": "sk-by-wrong"}])
async def test_a_wrong_key_is_an_authentication_error_worded_for_its_header(
    server: InProcessServer, credentials: dict[str, str]
) -> None:
    async with server.sdk(**credentials, max_retries=0) as client:
        with pytest.raises(anthropic.AuthenticationError) as caught:
            await client.messages.batches.list()
    sent = caught.value.response.request.headers
    message = "invalid x-api-key" if "x-api-key" in sent else "Invalid bearer token"
    assert caught.value.status_code == 401
    assert caught.value.body["error"] == {  # type: ignore[index]
        "type": "authentication_error",
        "message": message,
    }
