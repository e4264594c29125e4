"""Leave-one-source-out: does the learned decider learn the task or the datasets it saw?

The learned decider is fitted on the project's corpus plus a sample of each public intent
dataset (`corpus/escalation/public`). For each public source this refits the head without that
source's rows and scores the source's messages; beside it, the model fitted on everything
scores the same messages (in-sample). A wide gap between the two is overfitting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from handoff.decide.encoder import Encoder
from handoff.decide.learned import LearnedDecider
from handoff.decide.training import encode, fit_model, read_corpus
from handoff.evaluation.metrics import (
    BlockMetrics,
    LabelledMessage,
    Progress,
    block_metrics,
    run_messages,
)


@dataclass(frozen=True, slots=True)
class SourceFold:
    """One source's messages scored by a model that saw its sample and by one that did not."""

    source: str
    in_sample: BlockMetrics
    left_out: BlockMetrics


def fold_sources(rows: Sequence[LabelledMessage]) -> list[str]:
    """The sources the fold runs over, in order."""
    return sorted({r.source for r in rows})


def leave_one_source_out(
    corpus_root: Path,
    rows: Sequence[LabelledMessage],
    e5: Encoder,
    english: Encoder,
    progress: Progress = lambda _: None,
) -> list[SourceFold]:
    """Refit without each source of `rows` and score that source's unambiguous rows."""
    data = encode(read_corpus(corpus_root), e5, english, progress)
    unknown = set(fold_sources(rows)) - set(data.groups)
    if unknown:
        raise ValueError(f"no training rows from {', '.join(sorted(unknown))} to leave out")
    everything = LearnedDecider(e5, fit_model(data))
    folds = []
    for source in fold_sources(rows):
        scored = [r for r in rows if r.source == source and not r.ambiguous]
        without = LearnedDecider(e5, fit_model(data.without(source)))
        folds.append(
            SourceFold(
                source,
                in_sample=block_metrics(run_messages(everything, scored, progress=progress)),
                left_out=block_metrics(run_messages(without, scored, progress=progress)),
            )
        )
    return folds
