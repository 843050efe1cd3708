"""What every route needs, built once per app: services, settings, and the caller lookup."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.requests import Request

from batchyard.api.auth import authenticate
from batchyard.config import Settings
from batchyard.engines.registry import ModelRegistry
from batchyard.service.batches import BatchService, Caller
from batchyard.service.files import FileService
from batchyard.service.openai_batches import OpenAIBatchService
from batchyard.store.protocols import KeyStore


@dataclass
class ApiContext:
    settings: Settings
    keys: KeyStore
    batches: BatchService
    files: FileService
    openai_batches: OpenAIBatchService
    models: ModelRegistry
    #: Called after a create or a cancel so an in-process worker acts on it at once.
    nudge_worker: Callable[[], None] = field(default=lambda: None)

    async def caller(self, request: Request) -> Caller:
        workspace_id = await authenticate(request, self.keys)
        return Caller(workspace_id=workspace_id, public_url=self.public_url(request))

    def public_url(self, request: Request) -> str:
        """Where clients reach us: the configured URL, else the host they dialled."""
        if self.settings.public_url:
            return self.settings.public_url.rstrip("/")
        headers = request.headers
        scheme = headers.get("x-forwarded-proto", request.url.scheme)
        host = headers.get("x-forwarded-host") or headers.get("host") or request.url.netloc
        root = request.scope.get("root_path", "").rstrip("/")
        return f"{scheme}://{host}{root}"


def context_of(request: Request) -> ApiContext:
    context: ApiContext = request.app.state.context
    return context
