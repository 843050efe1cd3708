"""Requests of an ``anthropic-batch`` model, run as upstream Message Batches.

The dispatcher never claims them (:attr:`ModelRegistry.dispatched`); one of these per such
model, in every worker process, moves them through their upstream batch:

1. **Gather**: queued requests are grouped (:mod:`batchyard.worker.gathering`) and each group
   is stored as a ``submitting`` submission with its requests moved to ``submitted``, in one
   transaction, before the upstream hears of it. From then on nothing else runs them.
2. **Send**: the create goes out with the submission id as ``Idempotency-Key``; its upstream
   id is recorded (``submitted``). A retryable refusal is retried with backoff and the same
   key; any other errors every request of it with the upstream's type and message. A
   ``submitting`` submission found after a crash is sent again the same way: a batchyard
   upstream answers with the batch the first call made, so it runs once.
3. **Poll**: ``submitted`` ones are looked at with backoff from 1 s up to ``poll_seconds``
   (``retry-after`` honoured); one whose local batches are all being canceled is canceled
   upstream once.
4. **Collect**: when the upstream batch has ended its results stream in and each is written
   to its request (fenced: only while it is still ``submitted`` there, so a second download
   after a crash writes nothing twice), ``model`` put back to the client's name and usage at
   the batch tier; a request the results do not mention is ``errored``.

Every step works on a submission leased to this process alone (several workers share the
store), and the waits are notify | poll | stop like the dispatcher's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from functools import partial

import msgspec

from batchyard.config import Settings
from batchyard.engines.anthropic_batches import UpstreamBatchApi, UpstreamLine
from batchyard.errors import EngineError, ParamsError
from batchyard.protocol import outcomes
from batchyard.protocol.chat_translation import messages_body
from batchyard.protocol.errors import ERROR_TYPE_FOR_STATUS, ErrorType
from batchyard.protocol.routing import (
    decode_raw_object,
    encode_raw_object,
    raw_value,
    usage_counts,
)
from batchyard.store.protocols import SubmissionStore
from batchyard.store.records import Submission, SubmittedRequest, UpstreamResult
from batchyard.timeutil import MICROS_PER_SECOND, now_us
from batchyard.worker.backoff import backoff_micros
from batchyard.worker.gathering import Limits, plan_batches

logger = logging.getLogger("batchyard.upstream_batches")

#: Results written per transaction while a results file streams in.
_RESULTS_PER_WRITE = 1000
#: Submissions one round works on at once.
_STEPS_PER_ROUND = 16
#: The first look at a new upstream batch, and the base of the backoff.
_FIRST_POLL_SECONDS = 1.0
_KNOWN_ERROR_TYPES: dict[str, ErrorType] = {name: name for name in ERROR_TYPE_FOR_STATUS.values()}


class UpstreamBatches:
    def __init__(
        self,
        store: SubmissionStore,
        api: UpstreamBatchApi,
        *,
        name: str,
        names: Sequence[str],
        settings: Settings,
    ) -> None:
        self._store = store
        self._api = api
        self._name = name
        self._names = list(names)
        self._settings = settings
        options = api.options
        self._limits = Limits(
            max_requests=options.max_batch_requests,
            max_bytes=options.max_batch_bytes,
            max_wait=int(options.max_wait_seconds * MICROS_PER_SECOND),
            growth=max(0, len(api.upstream_model) - min(map(len, self._names))),
        )
        self._lease_micros = int(settings.lease_seconds * MICROS_PER_SECOND)
        self._nudge = asyncio.Event()

    def wake(self) -> None:
        """New batches were created or canceled: look now, not at the next poll."""
        self._nudge.set()

    async def run(self) -> None:
        """Gather, send, poll and collect until cancelled."""
        await self._api.start()
        try:
            while True:
                self._nudge.clear()
                try:
                    again = await self.round()
                except Exception:
                    logger.exception("model %s: upstream batch round failed", self._name)
                    again = False
                if not again:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self._settings.poll_interval_seconds):
                            await self._nudge.wait()
        finally:
            await self._api.aclose()

    async def round(self) -> bool:
        """One gather and one look at due submissions; ``True`` if more is waiting now."""
        now = now_us()
        limit = self._limits.max_requests
        plan = partial(plan_batches, now=now, limits=self._limits, offered_limit=limit)
        made = await self._store.gather(
            model=self._name,
            names=self._names,
            now=now,
            lease_until=now + self._lease_micros,
            limit=limit,
            plan=plan,
        )
        due = await self._store.claim_submissions(
            model=self._name,
            now=now,
            lease_until=now + self._lease_micros,
            limit=_STEPS_PER_ROUND,
        )
        await asyncio.gather(*(self._step(submission) for submission in [*made, *due]))
        return sum(s.request_count for s in made) >= limit or len(due) == _STEPS_PER_ROUND

    async def _step(self, submission: Submission) -> None:
        """One step of one leased submission; whatever goes wrong, it is looked at again."""
        try:
            if submission.state == "submitting":
                await self._send(submission)
            else:
                await self._poll(submission)
        except EngineError as exc:
            logger.warning("submission %s: %s; retrying", submission.id, exc.message)
            await self._later(submission, exc.retry_after)
        except Exception:
            logger.exception("submission %s failed; retrying", submission.id)
            await self._later(submission, None)

    async def _send(self, submission: Submission) -> None:
        requests = await self._store.submitted_requests(submission.id, with_params=True)
        sendable = await self._translated(submission, requests)
        del requests
        if not sendable:  # every request was refused before the upstream saw it
            await self._store.close_submission(
                submission.id, "ended", leftover=_no_result, now=now_us()
            )
            return
        body = self._api.create_body(sendable)
        del sendable
        try:
            upstream_id = await self._api.create(
                body, submission.headers, idempotency_key=submission.id
            )
        except EngineError as exc:
            if exc.retryable:
                raise
            refusal = outcomes.encode(outcomes.errored(exc.error_type, exc.message))
            await self._store.close_submission(
                submission.id, "failed", leftover=lambda: refusal, now=now_us()
            )
            return
        now = now_us()
        recorded = await self._store.mark_submitted(
            submission.id,
            upstream_id,
            now=now,
            next_check_at=now + int(_FIRST_POLL_SECONDS * MICROS_PER_SECOND),
        )
        if recorded is not None and recorded != upstream_id:
            # Another process sent it too, after this one's lease ran out, to an upstream
            # that does not dedupe: this batch is the duplicate, and its results unwanted.
            logger.error(
                "submission %s was created upstream twice (%s kept, %s canceled)",
                submission.id,
                recorded,
                upstream_id,
            )
            await self._api.cancel(upstream_id)

    async def _translated(
        self, submission: Submission, requests: Sequence[SubmittedRequest]
    ) -> list[tuple[int, bytes]]:
        """``(row_id, Messages params)`` to send: an OpenAI batch's line is translated from
        Chat Completions first, as the dispatcher does for other engines; one that cannot be
        is that request's ``errored`` result now, and is not sent."""
        sendable: list[tuple[int, bytes]] = []
        refused: list[UpstreamResult] = []
        for request in requests:
            if not request.chat:
                sendable.append((request.row_id, request.params))
                continue
            try:
                sendable.append((request.row_id, messages_body(request.params, in_batch=True)))
            except ParamsError as exc:
                outcome = outcomes.encode(outcomes.errored(exc.error_type, exc.message))
                refused.append(UpstreamResult(request.row_id, "errored", outcome))
        await self._write(submission, refused)
        return sendable

    async def _poll(self, submission: Submission) -> None:
        assert submission.upstream_id is not None  # recorded with the move to submitted
        cancel_sent = False
        if submission.cancel_wanted:
            await self._api.cancel(submission.upstream_id)
            cancel_sent = True
        status = await self._api.retrieve(submission.upstream_id)
        if not status.ended or status.results_url is None:
            await self._later(submission, None, cancel_sent=cancel_sent)
            return
        await self._collect(submission, status.results_url)

    async def _collect(self, submission: Submission, results_url: str) -> None:
        models = {
            r.row_id: r.model
            for r in await self._store.submitted_requests(submission.id, with_params=False)
        }
        batch: list[UpstreamResult] = []
        async for line in self._api.results(results_url):
            model = models.pop(line.row_id, None)
            if model is None:
                continue  # written by an earlier download, or not one of ours
            batch.append(_result(line, model))
            if len(batch) == _RESULTS_PER_WRITE:
                await self._write(submission, batch)
                batch = []
        await self._write(submission, batch)
        await self._store.close_submission(
            submission.id, "ended", leftover=_no_result, now=now_us()
        )

    async def _write(self, submission: Submission, results: list[UpstreamResult]) -> None:
        if results:
            now = now_us()
            await self._store.record_results(
                submission.id, results, now=now, lease_until=now + self._lease_micros
            )

    async def _later(
        self, submission: Submission, retry_after: float | None, *, cancel_sent: bool = False
    ) -> None:
        """Release the submission until its next look: backoff from 1 s to
        ``poll_seconds``, or later if the upstream said so."""
        poll = self._api.options.poll_seconds
        delay = backoff_micros(
            submission.checks + 1,
            base_seconds=min(_FIRST_POLL_SECONDS, poll),
            max_seconds=max(poll, retry_after or 0.0),
            retry_after=retry_after,
        )
        now = now_us()
        await self._store.reschedule(
            submission.id, next_check_at=now + delay, cancel_sent=cancel_sent, now=now
        )


def _result(line: UpstreamLine, model: str) -> UpstreamResult:
    """The stored result of one upstream line: the client's model name, batch usage."""
    if line.type == "canceled":
        return UpstreamResult(line.row_id, "canceled")
    if line.type == "expired":
        return UpstreamResult(line.row_id, "expired")
    if line.type == "succeeded" and line.message is not None:
        try:
            message = decode_raw_object(line.message)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
            return _errored(line.row_id, "api_error", "the upstream's result was unreadable")
        message["model"] = raw_value(model)
        input_tokens, output_tokens = usage_counts(message)
        return UpstreamResult(
            line.row_id,
            "succeeded",
            outcomes.encode(outcomes.succeeded(encode_raw_object(message))),
            input_tokens,
            output_tokens,
        )
    if line.type == "errored":
        error_type = _KNOWN_ERROR_TYPES.get(line.error_type, "api_error")
        return _errored(line.row_id, error_type, line.error_message)
    return _errored(line.row_id, "api_error", f"the upstream's result was {line.type!r}")


def _errored(row_id: int, error_type: ErrorType, message: str) -> UpstreamResult:
    return UpstreamResult(row_id, "errored", outcomes.encode(outcomes.errored(error_type, message)))


def _no_result() -> bytes:
    return outcomes.encode(
        outcomes.errored("api_error", "the upstream batch ended without a result for it")
    )
