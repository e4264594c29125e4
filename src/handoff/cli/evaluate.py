"""`handoff eval` and `handoff bench decide`: measure the escalation decider.

The logic lives in `handoff.evaluation.metrics` and `handoff.evaluation.benchmark`; this module
reads options, shows progress on stderr and renders Rich tables (stdout) or JSON.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import typer
from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from handoff.evaluation.benchmark import BenchResult, Latency
    from handoff.evaluation.metrics import (
        BlockMetrics,
        Errors,
        EvalReport,
        LabelledMessage,
        MessageError,
        Rate,
        Reliability,
        Scenario,
        ScenarioMetrics,
    )

err = Console(stderr=True, emoji=False)


class Figures(Protocol):
    def to_json(self) -> dict[str, Any]: ...


R = TypeVar("R", bound=Figures)
M = TypeVar("M")  # one language's figures, or all languages'
bench_app = typer.Typer(help="Benchmarks.", no_args_is_help=True)


def _quiet() -> None:
    # The model ships inside a package: no hub, no download bars on a terminal.
    for name, value in (
        ("HF_HUB_OFFLINE", "1"),
        ("TRANSFORMERS_OFFLINE", "1"),
        ("HF_HUB_DISABLE_PROGRESS_BARS", "1"),
        ("TRANSFORMERS_VERBOSITY", "error"),
        ("TQDM_DISABLE", "1"),
    ):
        os.environ.setdefault(name, value)
    for chatty in ("sentence_transformers", "transformers", "torch"):
        logging.getLogger(chatty).setLevel(logging.WARNING)


def _fail(message: str) -> typer.Exit:
    err.print(Text("Error: ", style="red") + Text(message), soft_wrap=True)
    return typer.Exit(code=2)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )


EXPLICIT, FRUSTRATION, SENSITIVE = "explicit_request", "frustration", "sensitive_topic"
REPEATED, HARD_NEGATIVE = "repeated_failed", "hard_negative"


def _emit(result: R, as_json: bool, render: Callable[[R, Console], None]) -> None:
    """Print a benchmark's figures: one JSON object with `--json`, else its tables."""
    if as_json:
        sys.stdout.write(json.dumps(result.to_json()) + "\n")
    else:
        render(result, Console(emoji=False))


def _run(
    benchmark: Coroutine[Any, Any, R],
    failure: str,
    errors: tuple[type[Exception], ...] = (OSError,),
) -> R:
    """Run a benchmark quietly; an error it cannot start for ends the command, said after
    `failure`."""
    _quiet()
    try:
        return asyncio.run(benchmark)
    except errors as error:
        raise _fail(f"{failure}: {error}") from None


PhaseProgress = Callable[[str, float, float], None]  # told the phase's label, done, of how many


def _run_in_phases(benchmark: Callable[[PhaseProgress], Coroutine[Any, Any, R]]) -> R:
    """Run a benchmark on its own server with a progress bar for each phase it tells of."""
    with _progress() as bar:
        tasks: dict[str, TaskID] = {}

        def tell(phase: str, done: float, total: float) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=round(done), total=total)

        return _run(
            benchmark(tell),
            "the benchmark's server did not run",
            (OSError, RuntimeError, TimeoutError),
        )


# A benchmark's own database: it writes thousands of rows and may drop them.
DATABASE_URL_OPTION = typer.Option(
    None,
    "--database-url",
    help="An empty, throw-away database (postgresql+asyncpg://...); default: SQLite in a "
    "temporary directory.",
)


def _table(title: str, columns: Sequence[str] = (), *, no_wrap: bool = False) -> Table:
    """A table of figures: the first column names the row (left), the others hold figures
    (right)."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for i, column in enumerate(columns):
        table.add_column(column, justify="right" if i else "left", no_wrap=no_wrap)
    return table


def _f(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def _whole_ms(value: float | None) -> str:
    """Milliseconds in a service benchmark's table: whole, thousands separated."""
    return "—" if value is None else f"{value:,.0f}"


# --- handoff eval --------------------------------------------------------------------------


def eval_command(
    messages: Path | None = typer.Option(
        None, "--messages", help="Labelled messages CSV (schema of shared/eval/messages.csv)."
    ),
    scenarios: Path | None = typer.Option(
        None, "--scenarios", help="Conversations JSONL (schema of shared/eval/scenarios.jsonl)."
    ),
    corpus: Path | None = typer.Option(
        None,
        "--corpus",
        metavar="DIR",
        help="A corpus folder (e.g. corpus/escalation/heldout): its messages.jsonl and "
        "conversations.jsonl, with every figure per language too.",
    ),
    json_out: str | None = typer.Option(
        None, "--json", metavar="OUT", help="Also write the metrics as JSON to OUT (- = stdout)."
    ),
    errors: int = typer.Option(
        0, "--errors", min=0, metavar="N", help="List the N most confident mistakes per kind."
    ),
    limit: int | None = typer.Option(
        None, "--limit", min=1, metavar="N", help="Only the first N messages."
    ),
    sample: int | None = typer.Option(
        None,
        "--sample",
        min=1,
        metavar="N",
        help="A sample of N messages, stratified by source, reason and ambiguity.",
    ),
    seed: int = typer.Option(0, "--seed", metavar="S", help="Seed of --sample."),
    loso: bool = typer.Option(
        False,
        "--loso",
        help="Leave one source out (with --messages): refit the learned decider without each "
        "source's sample and score that source, beside the in-sample model's figures.",
    ),
    train_root: Path = typer.Option(
        Path("corpus/escalation"), "--train", metavar="DIR", help="The corpus --loso refits on."
    ),
    decider_kind: str = typer.Option(
        "auto",
        "--decider",
        help="local (the rules), learned (the multilingual model), llm (the HANDOFF_LLM_* "
        "endpoint with the local safety net), or auto: HANDOFF_DECIDER's local decider, "
        "with the llm when one is configured.",
    ),
) -> None:
    """Measure the escalation decider on labelled messages and conversations."""
    from handoff.decide import get_encoder
    from handoff.evaluation import metrics as ev
    from handoff.service.deciders import configured_decider
    from handoff.settings import Settings

    if messages is None and scenarios is None and corpus is None:
        raise _fail(
            "give --messages PATH (labelled messages CSV), --scenarios PATH (JSONL), or both; "
            "or --corpus DIR"
        )
    if corpus is not None and (messages is not None or scenarios is not None):
        raise _fail("use either --corpus or --messages/--scenarios, not both")
    if limit is not None and sample is not None:
        raise _fail("use either --limit or --sample, not both")
    if json_out not in (None, "-") and not Path(json_out).parent.is_dir():
        raise _fail(f"--json {json_out}: no such directory {Path(json_out).parent}")
    _quiet()
    rows: list[LabelledMessage] = []
    convos: list[Scenario] = []
    try:
        if messages is not None:
            rows = ev.read_messages(messages)
        if scenarios is not None:
            convos = ev.read_scenarios(scenarios)
        if corpus is not None:
            rows, convos = ev.read_corpus(corpus)
    except ev.EvalDataError as e:
        raise _fail(str(e)) from None
    total_rows = len(rows)
    if limit is not None:
        rows = rows[:limit]
    if sample is not None:
        rows = ev.sample_messages(rows, sample, seed)

    if decider_kind not in ("auto", "local", "learned", "llm"):
        raise _fail(f"--decider {decider_kind}: choose auto, local, learned or llm")
    if loso:
        if messages is None:
            raise _fail("--loso needs --messages PATH (the rows of each source to score)")
        _leave_one_source_out(train_root, rows)
        return
    settings = Settings()
    if decider_kind in ("local", "learned"):
        # The same factory as the live service, with HANDOFF_DECIDER set by the flag.
        settings.decider = "rules" if decider_kind == "local" else "learned"
    with err.status("Loading the decider…"):
        try:
            decider = configured_decider(
                settings,
                get_encoder(),
                use_llm={"auto": None, "local": False, "learned": False, "llm": True}[decider_kind],
            )
        except ValueError as e:
            raise _fail(str(e)) from None
    with _progress() as bar:
        task = bar.add_task("Deciding", total=len(rows) + len(convos))
        report = ev.evaluate(
            lambda: decider,
            rows,
            convos,
            errors=errors,
            progress=lambda k: bar.advance(task, k),
        )
    meta: dict[str, object] = {
        "messages_path": str(messages) if messages else None,
        "scenarios_path": str(scenarios) if scenarios else None,
        "rows_in_file": total_rows,
        "limit": limit,
        "sample": sample,
        "seed": seed if sample is not None else None,
    }
    from handoff.decide.learned import LearnedDecider

    if isinstance(decider.local, LearnedDecider):
        model = decider.local.model
        meta["learned_threshold"] = model.threshold
        if model.conversation is not None:
            meta["learned_threshold_after_earlier_turns"] = {
                "conversation_head": model.conversation.threshold,
                "main_head": model.conversation.main_head_cut,
            }
    if corpus is not None:
        meta["corpus_path"] = str(corpus)
    if decider.llm is not None:
        meta["model_fallbacks"] = decider.fallbacks
    meta["decider"] = type(decider.local).__name__ + (" + LLM" if decider.llm else "")
    decider.close()
    report.meta.update(meta)

    out = Console(emoji=False) if json_out != "-" else err
    render_report(report, out)
    if json_out is not None:
        text = json.dumps(report.to_json(), indent=2, ensure_ascii=False)
        if json_out == "-":
            sys.stdout.write(text + "\n")
        else:
            try:
                Path(json_out).write_text(text + "\n", encoding="utf-8")
            except OSError as e:
                raise _fail(f"--json {json_out}: cannot write: {e.strerror or e}") from None
            err.print(Text(f"Metrics written to {json_out}"))


def _reliability_table(rel: Reliability) -> Table:
    t = _table("Reliability of P(escalate), headline rows")
    for name in ("P(escalate)", "rows", "mean predicted", "escalated"):
        t.add_column(name, justify="right")
    for b in rel.bins:
        if b.n:
            t.add_row(f"{b.low:.1f}–{b.high:.1f}", str(b.n), _f(b.mean_predicted), _f(b.observed))
    per_label = " · ".join(f"{label} {value:.3f}" for label, value in rel.label_ece.items())
    t.caption = (
        f"expected calibration error: P(escalate) {rel.ece:.3f}; each label's probability: "
        f"{per_label}"
    )
    return t


def _leave_one_source_out(train_root: Path, rows: list[LabelledMessage]) -> None:
    from handoff.decide import get_encoder
    from handoff.decide.encoder import get_e5_encoder
    from handoff.decide.training import read_corpus
    from handoff.evaluation.loso import fold_sources, leave_one_source_out

    try:
        training = len(read_corpus(train_root).rows)
    except (OSError, ValueError, KeyError) as e:
        raise _fail(f"--train {train_root}: {e}") from None
    with err.status("Loading the encoders…"):
        e5, english = get_e5_encoder(), get_encoder()
    scored = sum(not r.ambiguous for r in rows) * 2
    with _progress() as bar:
        task = bar.add_task("Refitting and deciding", total=training + scored)
        try:
            folds = leave_one_source_out(
                train_root, rows, e5, english, progress=lambda k: bar.advance(task, k)
            )
        except ValueError as e:
            raise _fail(str(e)) from None
    t = _table(
        f"Leave one source out ({', '.join(fold_sources(rows))}), ambiguous=0",
        ("source", "fitted on it", "rows", "esc P", "esc R", "esc F1", "false esc", "macro F1"),
    )
    for fold in folds:
        for seen, m in (("yes", fold.in_sample), ("no", fold.left_out)):
            esc = m.escalate
            t.add_row(
                fold.source if seen == "yes" else "",
                seen,
                str(m.n),
                _f(esc.precision),
                _f(esc.recall),
                _f(esc.f1),
                _pct(m.false_escalation_rate),
                _f(_macro_f1(m)),
            )
    t.caption = (
        "fitted on it — yes: the model fitted on every training row, this source's sample "
        "included (in-sample); no: refitted without it. macro F1: mean F1 of the reasons the "
        "source has."
    )
    Console(emoji=False).print(t)


def _macro_f1(m: BlockMetrics) -> float | None:
    values = [prf.f1 for prf in m.reasons.values() if prf.support and prf.f1 is not None]
    return sum(values) / len(values) if values else None


def render_report(report: EvalReport, console: Console) -> None:
    """Print every table of an evaluation report."""
    if report.headline is not None:
        n = report.headline.pooled.n
        # A corpus has one source, several languages and no ambiguous rows.
        title = "Messages" if report.by_lang else "Messages, ambiguous=0"
        console.print(_reason_table(report.headline.pooled, f"{title} ({n} rows)"))
        if report.by_lang:
            _render_corpus_messages(report.headline.pooled, report.by_lang, console)
        else:
            console.print(_source_table(report.headline.by_source, "Per source, ambiguous=0"))
    if report.ambiguous is not None:
        amb = report.ambiguous
        console.print(_reason_table(amb.pooled, f"Messages, ambiguous=1 ({amb.pooled.n} rows)"))
        console.print(_source_table(amb.by_source, "Per source, ambiguous=1"))
        if amb.pooled.hard_negatives:
            console.print(_hard_negatives_table(amb.pooled))
    if report.scenarios is not None:
        console.print(_scenario_table(report.scenarios))
        if report.scenarios_by_lang:
            console.print(_lang_scenario_table(report.scenarios, report.scenarios_by_lang))
    if report.reliability is not None:
        console.print(_reliability_table(report.reliability))
    t = report.timing
    console.print(
        f"{t.decisions} decisions in {t.seconds:.1f} s of decide calls: "
        f"[bold]{_f(t.decisions_per_second, 1)}[/] decisions/s"
    )
    if report.errors is not None:
        _render_errors(report.errors, console)


def _reason_table(block: BlockMetrics, title: str) -> Table:
    table = _table(
        title, ("reason", "support", "TP", "FP", "FN", "prec.", "recall", "F1", "F1 any")
    )
    for reason, prf in block.reasons.items():
        loose = block.reasons_any[reason]
        table.add_row(
            reason,
            str(prf.support),
            str(prf.tp),
            str(prf.fp),
            str(prf.fn),
            _f(prf.precision),
            _f(prf.recall),
            _f(prf.f1),
            _f(loose.f1),
        )
    e = block.escalate
    table.add_section()
    table.add_row(
        "[bold]escalate[/]",
        str(e.support),
        str(e.tp),
        str(e.fp),
        str(e.fn),
        _f(e.precision),
        _f(e.recall),
        _f(e.f1),
        "",
    )
    table.caption = (
        f"false escalations: {_pct(block.false_escalation_rate)} of "
        f"{block.no_escalation_rows} no_escalation rows · per reason: the decision's first "
        "reason against the row's label; 'F1 any' counts a reason in any position"
    )
    return table


def _source_table(by_source: dict[str, BlockMetrics], title: str) -> Table:
    table = _table(
        title,
        ("source", "rows", "esc P", "esc R", "esc F1", "false esc", "expl", "frus", "sens"),
        no_wrap=True,
    )
    table.caption = "expl, frus, sens: F1 of explicit_request, frustration, sensitive_topic"
    for source, b in by_source.items():
        st = b.reasons[SENSITIVE]
        table.add_row(
            Text(source),
            str(b.n),
            _f(b.escalate.precision),
            _f(b.escalate.recall),
            _f(b.escalate.f1),
            _pct(b.false_escalation_rate),
            _f(b.reasons[EXPLICIT].f1),
            _f(b.reasons[FRUSTRATION].f1),
            _f(st.f1),
        )
    return table


def _rate(rate: Rate | None) -> str:
    return "—" if rate is None else f"{_pct(rate.rate)} {rate.count}/{rate.n}"


def _render_corpus_messages(
    pooled: BlockMetrics, by_lang: dict[str, BlockMetrics], console: Console
) -> None:
    console.print(_lang_table(pooled, by_lang))
    if pooled.subtypes:
        console.print(_subtype_table(pooled))


def _per_language_table(
    title: str,
    columns: Sequence[str],
    caption: str,
    total: M,
    by_lang: dict[str, M],
    cells: Callable[[str, M], tuple[str, ...]],
) -> Table:
    """A row of `cells` for each language, then one for all of them together."""
    table = _table(title, ("lang", *columns), no_wrap=True)
    table.caption = caption
    for lang, figure in by_lang.items():
        table.add_row(*cells(lang, figure))
    table.add_section()
    table.add_row(*cells("[bold]all[/]", total))
    return table


def _lang_table(pooled: BlockMetrics, by_lang: dict[str, BlockMetrics]) -> Table:
    return _per_language_table(
        "Per language",
        ("expl P", "expl R", "frus", "sens", "rep", "esc", "false", "hard neg"),
        "expl P/R: explicit_request precision/recall; frus, sens, rep: F1 of frustration, "
        "sensitive_topic, repeated_failed (first reason); esc: F1 of escalate or not; "
        "false: no_escalation rows escalated; hard neg: hard negatives (among them) escalated; "
        "— : undefined (nothing predicted or nothing to find)",
        pooled,
        by_lang,
        _lang_cells,
    )


def _lang_cells(lang: str, b: BlockMetrics) -> tuple[str, ...]:
    negatives, kept = b.no_escalation_rows, b.confusion.get("no_escalation", {}).get("stay", 0)
    return (
        lang,
        _f(b.reasons[EXPLICIT].precision),
        _f(b.reasons[EXPLICIT].recall),
        _f(b.reasons[FRUSTRATION].f1),
        _f(b.reasons[SENSITIVE].f1),
        _f(b.reasons[REPEATED].f1),
        _f(b.escalate.f1),
        f"{negatives - kept}/{negatives}",
        _count(b.hard_negatives.get(HARD_NEGATIVE)),
    )


def _count(rate: Rate | None) -> str:
    return "—" if rate is None else f"{rate.count}/{rate.n}"


def _subtype_table(block: BlockMetrics) -> Table:
    table = _table(
        "sensitive_topic rows by subtype",
        ("subtype", "rows", "escalated", "sensitive_topic recall"),
    )
    table.caption = "recall: escalated with sensitive_topic among the decision's reasons"
    for subtype, rates in block.subtypes.items():
        esc, topic = rates["escalated"], rates[SENSITIVE]
        table.add_row(Text(subtype), str(esc.n), _rate(esc), _rate(topic))
    return table


def _lang_scenario_table(total: ScenarioMetrics, by_lang: dict[str, ScenarioMetrics]) -> Table:
    return _per_language_table(
        "Conversations per language",
        ("conversations", "exact turn", "accuracy", "traps kept", "reason match"),
        "reason match: on-time escalations whose decision has the expected reason",
        total,
        by_lang,
        _lang_scenario_cells,
    )


def _lang_scenario_cells(lang: str, m: ScenarioMetrics) -> tuple[str, ...]:
    return (
        lang,
        str(m.total),
        f"{m.correct}/{m.total}",
        _pct(m.accuracy),
        f"{m.traps_kept}/{m.traps}",
        f"{m.reason_match}/{m.escalated_on_time}",
    )


def _hard_negatives_table(block: BlockMetrics) -> Table:
    table = _table(
        "no_escalation rows by aux flag (hard negatives)", ("aux flag", "rows", "escalated")
    )
    for flag, rate in block.hard_negatives.items():
        table.add_row(Text(flag), str(rate.n), f"{rate.count} ({_pct(rate.rate)})")
    return table


def _scenario_table(m: ScenarioMetrics) -> Table:
    table = _table(
        f"Conversations ({m.total})", ("expected reason", "scenarios", "right turn", "accuracy")
    )
    for reason, g in m.by_reason.items():
        table.add_row(reason, str(g.total), str(g.correct), _pct(g.accuracy))
    table.add_section()
    table.add_row("[bold]all[/]", str(m.total), str(m.correct), _pct(m.accuracy))
    outcomes = ", ".join(f"{k} {v}" for k, v in m.outcomes.items())
    table.caption = (
        f"traps kept {m.traps_kept}/{m.traps} · on-time escalations with the expected reason "
        f"{m.reason_match}/{m.escalated_on_time} · {outcomes}"
    )
    return table


def _clip(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _message_errors(title: str, items: list[MessageError], console: Console) -> None:
    if not items:
        return
    console.print(Text(title, style="bold underline"))
    for i, e in enumerate(items, start=1):
        label = f"{e.label}/{e.subtype}" if e.subtype else e.label
        head = Text(f"{i:>3}. ")
        if e.lang:
            head.append(f"[{e.lang}] ")
        head.append(f"{e.source}:{e.row_id}", style="cyan")
        head.append(f"  label {label} → {', '.join(e.predicted) or 'stay'}  score {e.score:.2f}")
        console.print(head)
        console.print(Text(f"     “{_clip(e.text, 300)}”"))
        for line in e.evidence[:3] or ("no signal",):
            console.print(Text(f"     · {_clip(line)}", style="dim"))
    console.print()


def _render_errors(errors: Errors, console: Console) -> None:
    _message_errors(
        "False escalations of no_escalation rows (highest score first)",
        errors.false_escalations,
        console,
    )
    _message_errors("Missed escalations (weakest near miss first)", errors.missed, console)
    _message_errors(
        "Escalated for another reason than the label (highest score first)",
        errors.wrong_reason,
        console,
    )
    if not errors.scenarios:
        return
    console.print(Text("Conversations decided at the wrong turn", style="bold underline"))
    for i, s in enumerate(errors.scenarios, start=1):
        expected = (
            f"turn {s.expected_at} ({s.expected_reason})" if s.expected_at is not None else "never"
        )
        got = (
            f"turn {s.predicted_at} ({', '.join(s.predicted)})"
            if s.predicted_at is not None
            else "never"
        )
        head = Text(f"{i:>3}. ")
        if s.lang:
            head.append(f"[{s.lang}] ")
        head.append(s.id, style="cyan")
        head.append(f"  {s.outcome}: expected {expected}, got {got}")
        console.print(head)
        if s.turn:
            console.print(Text(f"     “{_clip(s.turn, 300)}”"))
        for line in s.evidence[:3] or ("no signal",):
            console.print(Text(f"     · {_clip(line)}", style="dim"))
    console.print()


# --- handoff bench decide ------------------------------------------------------------------


@bench_app.command("decide")
def bench_decide_command(
    messages: Path | None = typer.Option(
        None, "--messages", help="Messages CSV to sample from (default: ~50 built-in messages)."
    ),
    n: int = typer.Option(500, "--n", min=1, help="How many distinct messages to time."),
    seed: int = typer.Option(0, "--seed", help="Seed of the sample."),
    as_json: bool = typer.Option(False, "--json", help="Print the figures as one JSON object."),
    decider_kind: str = typer.Option(
        "learned",
        "--decider",
        help="learned (the default; baseline: one e5 pass, the encoder it uses) or rules "
        "(baseline: one MiniLM pass).",
    ),
    after_turns: bool = typer.Option(
        False,
        "--after-turns",
        help="Decide each message after two earlier turns (a question and its answer, encoded "
        "in the warm-up as a live conversation would have): the learned decider's conversation "
        "head, and its main head when that one stays.",
    ),
) -> None:
    """Time the decider on one core beside a keyword regex and one raw pass of its encoders."""
    from handoff.evaluation import benchmark as bm
    from handoff.evaluation.metrics import EvalDataError

    if decider_kind not in ("learned", "rules"):
        raise _fail(f"--decider {decider_kind}: choose learned or rules")
    _quiet()
    try:
        texts = bm.bench_texts(messages, n, seed)
    except EvalDataError as e:
        raise _fail(str(e)) from None
    if not texts:
        raise _fail("no messages to time")
    with err.status("Loading two fresh encoders (decider and baseline)…"):
        decider, baseline = bm.learned_pair() if decider_kind == "learned" else bm.fresh_pair()
    with _progress() as bar:
        task = bar.add_task("Timing", total=len(texts))
        history = bm.EARLIER_TURNS if after_turns else ()
        result = bm.run_benchmark(
            texts, decider, baseline, history=history, progress=lambda: bar.advance(task)
        )
    _emit(result, as_json, render_bench)


def _ms(value: float) -> str:
    return f"{value:.4f}" if value < 0.1 else f"{value:.2f}"


def render_bench(result: BenchResult, console: Console) -> None:
    """Print the benchmark table."""
    pinned = f"CPU {result.cpu}" if result.cpu is not None else "unpinned"
    table = _table(
        f"Decision latency, {result.decider.n} distinct messages, one core ({pinned}, "
        f"{result.torch_threads} torch thread)",
        ("operation", "p50 ms", "p99 ms", "mean ms", "per second"),
    )
    rows: list[tuple[str, Latency]] = [
        ("decider.decide", result.decider),
        ("encoder passes (uncached)", result.encoder),
        ("keyword regex", result.keyword),
    ]
    for name, lat in rows:
        table.add_row(
            name, _ms(lat.p50_ms), _ms(lat.p99_ms), _ms(lat.mean_ms), f"{lat.per_second:,.0f}"
        )
    ratio = result.to_json()["ratio_to_encoder"]
    table.caption = (
        f"decider p50 = {ratio}x one pass of the encoders it uses" if ratio is not None else None
    )
    console.print(table)
