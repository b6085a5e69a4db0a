"""Time travel in the TUI: undo/redo keys, the history panel, live hyperparameters,
continue with breakpoints."""

from __future__ import annotations

from pilot_helpers import log_text, press, settle
from textual.widgets import Checkbox, DataTable, Input

from optdbg.engine import Session
from optdbg.tui.app import OptDbgApp
from optdbg.tui.dialogs import BreakpointDialog, HyperDialog
from optdbg.tui.widgets import HistoryPanel, StatusBar, UpdatePanel

WIDE = (160, 48)
BOWL_STEP = [8.600000381469727, 7.599999904632568]


def value(app: OptDbgApp) -> list[float]:
    assert app.view is not None
    return app.view.snapshot.params[0].value.values  # type: ignore[no-any-return]


async def test_undo_and_redo_keys_restore_exact_values() -> None:
    app = OptDbgApp(Session.open("quadratic_bowl"))
    async with app.run_test(size=WIDE) as pilot:
        await press(pilot, "f", "b", "s")
        assert value(app) == BOWL_STEP
        await press(pilot, "u")
        assert value(app) == [10.0, 10.0]
        assert app.view is not None and app.view.snapshot.params[0].grad is not None
        await press(pilot, "left", "left")
        assert app.view.snapshot.loss is None  # back before the forward
        await press(pilot, "right", "right", "right")
        assert value(app) == BOWL_STEP
        await press(pilot, "right")
        assert "nothing to redo" in log_text(app)


async def test_undo_at_the_start_is_refused_visibly() -> None:
    app = OptDbgApp(Session.open("quadratic_bowl"))
    async with app.run_test(size=WIDE) as pilot:
        await press(pilot, "u")
        assert "nothing to undo" in log_text(app)


async def test_history_panel_lists_ops_and_jumps_on_enter() -> None:
    app = OptDbgApp(Session.open("quadratic_bowl"))
    async with app.run_test(size=WIDE) as pilot:
        await press(pilot, "f", "b", "s", "z", "u", "u")
        table = app.query_one(HistoryPanel).query_one(DataTable)
        assert table.row_count == 5  # the start and four ops, two of them undone
        assert "strike" in str(table.get_row("3")[2].style)
        table.focus()
        table.move_cursor(row=1)  # op 0: the forward
        await press(pilot, "enter")
        assert app.view is not None and app.view.snapshot.op_count == 1
        assert app.view.snapshot.loss == 201.0 and app.view.snapshot.params[0].grad is None


def _rows(table: DataTable[object]) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(r)] for r in range(table.row_count)]


async def test_history_panel_updated_in_place_shows_what_a_rebuild_shows() -> None:
    """The panel adds, rewrites and drops only the rows that changed: after ops, undo, a new
    op that drops the redo branch and a jump, it reads as a panel built afresh."""
    app = OptDbgApp(Session.open("quadratic_bowl"))
    async with app.run_test(size=WIDE) as pilot:
        panel = app.query_one(HistoryPanel)
        table = panel.query_one(DataTable)
        await press(pilot, "f", "b", "s", "z", "f", "u", "u", "u", "b")
        assert app.view is not None
        for _ in range(2):
            assert table.get_row_index(str(app.view.snapshot.op_count - 1)) == table.cursor_row
            fresh = HistoryPanel()
            await app.screen.mount(fresh)
            fresh.timeline = app.view.timeline
            await pilot.pause()
            assert _rows(table) == _rows(fresh.query_one(DataTable))
            assert [str(c.style) for c in table.get_row_at(2)] == [
                str(c.style) for c in fresh.query_one(DataTable).get_row_at(2)
            ]
            await fresh.remove()
            table.focus()
            table.move_cursor(row=2)  # op 1: the backward
            await press(pilot, "enter")


class _MeasuredHistory(HistoryPanel):
    """The panel as it was: every rewritten cell updated with `update_width`."""

    def _width_changes(self, table: object, removed: object, cells: object) -> list[bool]:
        super()._width_changes(table, removed, cells)  # type: ignore[arg-type]
        return [True] * 5


async def test_history_columns_as_wide_as_when_every_cell_is_measured() -> None:
    """Cells rewritten without `update_width` where the column's width cannot change: the
    columns end as wide as when the table measures every rewritten cell, through ops, undo,
    a new op dropping the redo branch (its rows removed) and a jump."""
    app = OptDbgApp(Session.open("quadratic_bowl"))
    async with app.run_test(size=WIDE) as pilot:
        panel = app.query_one(HistoryPanel)
        reference = _MeasuredHistory()
        await app.query_one("#error").mount(reference)  # after the app's panel: not queried
        steps = ["f", "b", "s", "z", "f", "b", "s", "z", "u", "u", "u", "u", "u", "f", "b"]
        steps += ["s", "z", "u", "u", "u", "right", "f", "b", "s", "z", "f"]
        for key in steps:
            await press(pilot, key)
            assert app.view is not None
            reference.timeline = app.view.timeline
            await pilot.pause()
            tables = [p.query_one(DataTable) for p in (panel, reference)]
            widths = [[c.content_width for c in t.columns.values()] for t in tables]
            assert widths[0] == widths[1], key
            assert _rows(tables[0]) == _rows(tables[1])


async def test_learning_rate_edit_takes_effect_in_the_next_step() -> None:
    app = OptDbgApp(Session.open("quadratic_bowl"))
    async with app.run_test(size=WIDE) as pilot:
        await press(pilot, "l")
        assert isinstance(app.screen, HyperDialog)
        app.screen.query_one(Input).value = "0.25"
        await press(pilot, "enter")
        assert "lr: 0.1 → 0.25" in log_text(app)
        await press(pilot, "f", "b", "s")
        assert value(app) == [6.5, 4.0]
        assert "0.25·[14, 24]" in "\n".join(app.query_one(UpdatePanel).lines)
        await press(pilot, "u", "u", "u", "u")  # the edit itself is undoable
        assert app.view is not None and app.view.snapshot.lrs == (0.1,)


async def test_invalid_hyperparameter_is_refused_in_the_dialog() -> None:
    app = OptDbgApp(Session.open("classifier_adam"))
    async with app.run_test(size=WIDE) as pilot:
        await press(pilot, "H")
        dialog = app.screen
        assert isinstance(dialog, HyperDialog)
        names = [key for _, key, _ in dialog.fields]
        field = dialog.query_one("#hp-value", Input)
        assert field.has_focus and field.value == "0.01"  # the first row: lr
        field.value = "fast"
        await press(pilot, *["down"] * names.index("betas"))
        assert field.value == "0.9, 0.999"
        field.value = "0.8, 0.99"
        await press(pilot, "enter")
        assert isinstance(app.screen, HyperDialog)
        error = str(dialog.query_one("#dialog-error").render())
        assert "lr: cannot read 'fast' as a number" in error
        assert field.value == "fast"  # the cursor went back to the refused value
        field.value = "0.02"
        await press(pilot, "enter")
        assert app.view is not None
        assert app.view.snapshot.groups[0]["betas"] == (0.8, 0.99)
        assert app.view.snapshot.lrs == (0.02,)


async def test_continue_runs_live_and_pauses_on_any_key() -> None:
    app = OptDbgApp(Session.open("quadratic_bowl"))
    async with app.run_test(size=WIDE) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await pilot.pause(0.3)
        assert app.running is not None
        status = app.query_one(StatusBar)
        for _ in range(100):  # the status line and loss plot update while it runs
            await pilot.pause(0.05)
            if status.snapshot is not None and status.snapshot.op_count > 8:
                break
        assert status.snapshot is not None and status.snapshot.op_count > 8
        await pilot.press("f")  # any key pauses (and does not run forward)
        await settle(pilot)
        assert app.running is None
        assert "paused" in log_text(app)
        ops = app.view.snapshot.op_count
        await pilot.pause(0.3)
        assert app.view.snapshot.op_count == ops


async def test_continue_stops_at_a_breakpoint_condition() -> None:
    app = OptDbgApp(Session.open("quadratic_bowl"))
    async with app.run_test(size=WIDE) as pilot:
        await press(pilot, "k")
        dialog = app.screen
        assert isinstance(dialog, BreakpointDialog)
        dialog.query_one(Input).value = "loss < 8.5"
        await press(pilot, "enter")
        await press(pilot, "c")
        assert app.running is None
        assert app.view is not None
        snap = app.view.snapshot
        assert snap.loss is not None and snap.loss < 8.5
        assert snap.loss_history[-2] >= 8.5  # stopped right after the first forward below
        assert "condition met" in log_text(app)


async def test_breakpoint_dialog_rejects_unsafe_conditions() -> None:
    app = OptDbgApp(Session.open("quadratic_bowl"))
    async with app.run_test(size=WIDE) as pilot:
        await press(pilot, "k")
        dialog = app.screen
        dialog.query_one(Input).value = "__import__('os').system('true')"
        await press(pilot, "enter")
        assert isinstance(app.screen, BreakpointDialog)
        assert str(dialog.query_one("#dialog-error").render()).strip()


async def test_continue_stops_when_a_warning_fires() -> None:
    app = OptDbgApp(Session.open("quadratic_bowl_lr10"))
    async with app.run_test(size=WIDE) as pilot:
        await press(pilot, "c")
        assert app.running is None
        assert "condition met" in log_text(app) or "warning" in log_text(app)
        assert app.view is not None
        last = app.query_one("#status").render()
        assert "⚠" in str(last) or "diverging" in log_text(app) or "non-finite" in log_text(app)
        assert app.view.snapshot.step_count < 30


async def test_breakpoint_on_warning_can_be_turned_off() -> None:
    app = OptDbgApp(Session.open("quadratic_bowl_lr10"))
    async with app.run_test(size=WIDE) as pilot:
        await press(pilot, "k")
        dialog = app.screen
        # step 12: past the diverging warnings, before the loss overflows (a run stops on
        # a loss that stays non-finite, warnings or not)
        dialog.query_one(Input).value = "step >= 12"
        dialog.query_one(Checkbox).value = False
        await press(pilot, "enter")
        await press(pilot, "c")
        assert app.view is not None and app.view.snapshot.step_count == 12
        assert "diverging" in log_text(app)


async def test_diagnostics_view_lists_each_pitfall_with_its_fix() -> None:
    from optdbg.tui.dialogs import DiagnosticsScreen

    app = OptDbgApp(Session.open("quadratic_bowl"))
    async with app.run_test(size=WIDE) as pilot:
        await press(pilot, "d")
        assert isinstance(app.screen, DiagnosticsScreen)
        first = str(app.screen.query_one("#diagnostics-text").render())
        assert "No pitfall found in 0 ops" in first
        await press(pilot, "escape", "f", "b", "f", "b", "s", "s", "d")
        text = str(app.screen.query_one("#diagnostics-text").render())
        assert "grad-accumulated" in text and "stale-grad" in text
        assert "fix:  call optimizer.zero_grad()" in text
        await press(pilot, "escape")
        assert not isinstance(app.screen, DiagnosticsScreen)


async def test_history_table_draws_what_a_plain_data_table_draws() -> None:
    """The history's table keeps each row's drawing while the row is unchanged: through
    added and rewritten rows, the cursor and the focus moving, the first rows dropped (every
    row moves up), a clear with the same keys and a theme change, every line it draws is the
    plain DataTable's."""
    from collections.abc import Callable

    from rich.text import Text
    from textual.app import App, ComposeResult

    from optdbg.tui.widgets import RowCachedTable

    Step = Callable[[DataTable[object]], object]
    first = lambda t: t.ordered_columns[0].key  # noqa: E731
    steps: list[Step] = [lambda t: t.add_columns("", "#", "op")]
    for i in range(14):
        steps.append(lambda t, i=i: t.add_row("", Text(str(i)), Text("op", "bold"), key=str(i)))
        steps.append(lambda t, i=i: t.move_cursor(row=i, scroll=True))
    steps += [
        lambda t: t.update_cell("12", first(t), Text("▶")),
        lambda t: t.update_cell("3", t.ordered_columns[2].key, Text("x", "dim strike")),
        lambda t: t.focus(),
        lambda t: t.move_cursor(row=2, scroll=True),
        lambda t: t.remove_row("0"),
        lambda t: t.remove_row("1"),
        lambda t: t.clear(),
        *(lambda t, i=i: t.add_row("", Text(f"new {i}"), Text("z"), key=str(i)) for i in range(3)),
        lambda t: setattr(t.app, "theme", "textual-light"),
        lambda t: t.move_cursor(row=1),
    ]

    async def drawn(kind: type[DataTable[object]]) -> list[list[list[object]]]:
        class One(App[None]):
            def compose(self) -> ComposeResult:
                yield kind(cursor_type="row")

        out = []
        app = One()
        async with app.run_test(size=(60, 12)) as pilot:
            table = app.query_one(DataTable)
            table.blur()
            for step in steps:
                step(table)
                await pilot.pause()
                out.append([list(table.render_line(y)) for y in range(table.size.height)])
        return out

    cached, plain = await drawn(RowCachedTable), await drawn(DataTable)
    assert len(cached) == len(steps)
    for k, (a, b) in enumerate(zip(cached, plain, strict=True)):
        assert a == b, f"step {k}"
