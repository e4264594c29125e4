"""`handoff train`: rebuild the learned decider's model from the training corpus."""

from __future__ import annotations

from pathlib import Path

import typer

from handoff.cli.evaluate import _fail, _progress, _quiet, err


def train_command(
    corpus: Path = typer.Option(
        Path("corpus/escalation"),
        "--corpus",
        help="Corpus root: its train/ (messages and conversations per language) and "
        "public/intents.jsonl are fitted on; heldout/ is never read.",
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Folder to write escalation-v2.npz/.json to (default: the package's)."
    ),
) -> None:
    """Rebuild the learned decider (HANDOFF_DECIDER=learned) deterministically."""
    from handoff.decide.encoder import E5Encoder, get_encoder
    from handoff.decide.learned import model_paths
    from handoff.decide.training import encode, fit_model, read_corpus, save_model

    _quiet()
    if not corpus.is_dir():
        raise _fail(f"--corpus {corpus}: no such directory")
    try:
        training = read_corpus(corpus)
    except (FileNotFoundError, ValueError, KeyError) as e:
        raise _fail(f"{corpus}: {e}") from None
    with err.status("Loading the encoders…"):
        encoder, english = E5Encoder(), get_encoder()
    with _progress() as bar:
        task = bar.add_task("Encoding", total=len(training.rows))
        data = encode(training, encoder, english, progress=lambda k: bar.advance(task, k))
    with err.status("Fitting the head, its temperature and threshold…"):
        model = fit_model(data)
    npz, meta = model_paths(out)
    save_model(model, npz, meta)
    cv = model.meta["cv"]
    err.print(
        f"[green]✓[/] {npz} ({len(data.texts)} messages; temperature {model.temperature:.3f}, "
        f"threshold P(no_escalation) < {model.threshold:.4f}; out of fold: {cv})"
    )
