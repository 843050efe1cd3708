"""The terminal side of ``batchyard run``: the plan, live progress bars and the summary.

Everything goes to standard error, so that a run's own output (and ``batches results``
piped to a file) stays clean on standard output.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.prompt import Confirm
from rich.table import Table as RichTable
from rich.text import Text

from batchyard.client.runner import Plan, Summary
from batchyard.client.state import RunState
from batchyard.protocol.batches import MessageBatch


class RateColumn(ProgressColumn):
    """Requests finished per second, as rich measures the task's recent progress."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("    -/s" if speed is None else f"{speed:7.1f}/s", style="progress.data.speed")


def money(amount: float | None) -> str:
    return "unknown" if amount is None else f"${amount:,.4f}" if amount < 1 else f"${amount:,.2f}"


class TerminalDisplay:
    """:class:`~batchyard.client.runner.Display` on a rich console."""

    def __init__(self, console: Console | None = None, *, assume_yes: bool = False) -> None:
        self.console = console or Console(stderr=True)
        self.assume_yes = assume_yes
        # Fits 80 columns: a bar is named by the end of its batch id (the full id is printed
        # when the batch is submitted).
        self.bars = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(bar_width=20),
            MofNCompleteColumn(),
            RateColumn(),
            TextColumn("[red]{task.fields[errors]} errors"),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
        )
        self._tasks: dict[tuple[int, str], TaskID] = {}
        self._totals: dict[int, TaskID] = {}

    def __enter__(self) -> TerminalDisplay:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Leave the bars as they last stood (stopping bars never shown prints a blank line)."""
        if self.bars.live.is_started:
            self.bars.stop()

    def plan(self, plan: Plan) -> None:
        grid = RichTable.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        grid.add_row("Input", f"{plan.input.name}: {plan.rows:,} rows")
        grid.add_row("Sent to", f"{plan.where}, model {plan.model}")
        grid.add_row("Batches", f"{plan.batches:,}")
        if plan.tokens is None:
            grid.add_row("Input tokens", "unknown (the server cannot count them)")
        elif plan.tokens.exact:
            grid.add_row("Input tokens", f"{plan.tokens.input_tokens:,}")
        else:
            grid.add_row(
                "Input tokens",
                f"~{plan.tokens.input_tokens:,} (counted on {plan.tokens.counted:,} rows, "
                "extrapolated)",
            )
        grid.add_row("Output tokens", f"at most {plan.max_output_tokens:,}")
        if plan.price is not None and plan.tokens is not None:
            tokens = plan.tokens.input_tokens
            most = plan.max_output_tokens
            batch = plan.price.cost(tokens, most, batch=True)
            standard = plan.price.cost(tokens, most, batch=False)
            grid.add_row(
                "Cost", f"at most {money(batch)} at batch price ({money(standard)} standard)"
            )
        else:
            grid.add_row("Cost", "unknown (no price for this model: --price-input/--price-output)")
        self.console.print(grid)

    def confirm(self, plan: Plan) -> bool:
        if self.assume_yes:
            return True
        return Confirm.ask(
            f"Submit {plan.rows:,} requests in {plan.batches:,} batches?",
            console=self.console,
            default=False,
        )

    def resuming(self, state: RunState) -> None:
        submitted = sum(chunk.batch_id is not None for r in state.rounds for chunk in r.chunks)
        self.console.print(
            f"Resuming: {submitted} batches were submitted earlier; none is sent again."
        )

    def progress(self, round_number: int, batches: Sequence[MessageBatch]) -> None:
        self.bars.start()
        done_all = total_all = errors_all = 0
        for batch in batches:
            counts = batch.request_counts
            done = counts.succeeded + counts.errored + counts.canceled + counts.expired
            total = done + counts.processing
            errors = counts.errored + counts.expired
            done_all, total_all, errors_all = (
                done_all + done,
                total_all + total,
                errors_all + errors,
            )
            key = (round_number, batch.id)
            if key not in self._tasks:
                label = f"…{batch.id[-8:]}"
                self._tasks[key] = self.bars.add_task(label, total=total, errors=0)
            self.bars.update(self._tasks[key], completed=done, total=total, errors=errors)
        if round_number not in self._totals:
            label = "total" if round_number == 1 else f"retry {round_number - 1}"
            self._totals[round_number] = self.bars.add_task(label, total=total_all, errors=0)
        self.bars.update(
            self._totals[round_number], completed=done_all, total=total_all, errors=errors_all
        )

    def submitted(self, round_number: int, batch: MessageBatch, rows: int) -> None:
        again = "" if round_number == 1 else f" (retry {round_number - 1})"
        self.console.print(f"Submitted {batch.id}: {rows:,} requests{again}")

    def summary(self, summary: Summary) -> None:
        self.close()
        table = RichTable(title="batchyard run", show_header=False, title_justify="left")
        table.add_column(style="bold")
        table.add_column(justify="right")
        for kind in ("succeeded", "errored", "canceled", "expired"):
            table.add_row(kind.capitalize(), f"{summary.by_type.get(kind, 0):,}")
        for error_type, count in summary.errors.most_common():
            table.add_row(f"  {error_type}", f"{count:,}")
        table.add_row("Input tokens", f"{summary.input_tokens:,}")
        table.add_row("Output tokens", f"{summary.output_tokens:,}")
        table.add_row("Cost (batch)", money(summary.batch_cost))
        table.add_row("Cost (standard)", money(summary.standard_cost))
        rounds = "1 round" if summary.rounds == 1 else f"{summary.rounds} rounds"
        table.add_row("Batches", f"{summary.batches:,} in {rounds}")
        table.add_row("Retried rows", f"{summary.retried:,}")
        self.console.print(table)
        if summary.output is not None:
            self.console.print(f"Wrote {summary.rows:,} rows to {summary.output}", soft_wrap=True)
