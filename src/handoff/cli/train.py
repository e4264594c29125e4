"""`handoff train`: rebuild the learned decider's model from the training corpus."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from handoff.cli.evaluate import _fail, _progress, _quiet, err

if TYPE_CHECKING:
    from handoff.decide.encoder import Encoder
    from handoff.decide.training import Corpus, TrainingSet


def train_command(
    corpus: Path = typer.Option(
        Path("corpus/escalation"),
        "--corpus",
        help="Corpus root: its train/ (messages and conversations per language) and "
        "public/intents.jsonl are fitted on, and conversation/ for the conversation head; "
        "the development and held-out sets are never read.",
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="Folder to write the two heads' escalation-v2*.npz/.json to (default: the package's).",
    ),
) -> None:
    """Rebuild the learned decider (HANDOFF_DECIDER=learned) deterministically: its main head,
    then its conversation head."""
    from handoff.decide.encoder import E5Encoder, get_encoder
    from handoff.decide.learned import CONVERSATION_MODEL_NAME, MODEL_NAME, model_paths
    from handoff.decide.training import fit_heads, read_corpus, save_model

    _quiet()
    if not corpus.is_dir():
        raise _fail(f"--corpus {corpus}: no such directory")
    try:
        main, conversation = read_corpus(corpus), read_corpus(corpus, conversation=True)
    except (FileNotFoundError, ValueError, KeyError) as e:
        raise _fail(f"{corpus}: {e}") from None
    with err.status("Loading the encoders…"):
        encoders = E5Encoder(), get_encoder()
    main_data = _encode("the main head's", main, encoders)
    conversation_data = _encode("the conversation head's", conversation, encoders)
    with err.status("Fitting both heads, their temperatures and thresholds…"):
        heads = fit_heads(main_data, conversation_data)
    for name, model, data in zip(
        (MODEL_NAME, CONVERSATION_MODEL_NAME), heads, (main_data, conversation_data), strict=True
    ):
        npz, meta = model_paths(out, name)
        save_model(model, npz, meta)
        err.print(
            f"[green]✓[/] {npz} ({len(data.texts)} messages; temperature "
            f"{model.temperature:.3f}, threshold P(no_escalation) < {model.threshold:.4f}; "
            f"out of fold: {model.meta['cv']})"
        )


def _encode(whose: str, training: Corpus, encoders: tuple[Encoder, Encoder]) -> TrainingSet:
    from handoff.decide.training import encode

    with _progress() as bar:
        task = bar.add_task(f"Encoding {whose} messages", total=len(training.rows))
        return encode(training, *encoders, progress=functools.partial(bar.advance, task))
