"""How well do the learned decider's e5 cut-offs for the admin's trigger examples match
paraphrases, beside the rules decider's MiniLM ones?

Pairs of messages from `corpus/escalation/public/intents.jsonl` (English, three public intent
datasets) that share an intent label stand for "a paraphrase of the trigger example"; pairs
with different labels for "an unrelated message". For each MiniLM cut-off of `Thresholds`, it
prints the share of paraphrases it matches and of unrelated pairs it lets through, then the same
for e5 at the cut-off `handoff train` moved it to (`rule_thresholds` in escalation-v2.json).
These messages are among those the cut-offs were moved on (the same share of all their pairs
passes either cut-off), so the unrelated shares agree by construction; the paraphrase shares
are the measurement.

    .venv/bin/python scripts/study_trigger_cutoffs.py
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from handoff.decide.encoder import E5Encoder, get_encoder
from handoff.decide.learned import shipped_model
from handoff.decide.policy import Thresholds

INTENTS = Path(__file__).resolve().parents[1] / "corpus/escalation/public/intents.jsonl"


def main() -> None:
    rows = [json.loads(line) for line in INTENTS.read_text(encoding="utf-8").splitlines()]
    texts = [r["text"] for r in rows]
    labels = np.asarray([f"{r['source']}:{r['orig_label']}" for r in rows])
    upper = np.triu_indices(len(rows), 1)
    same = (labels[:, None] == labels[None, :])[upper]
    minilm = get_encoder().encode(texts, cache=False)
    e5 = E5Encoder().encode(texts, cache=False)
    cosines = {"MiniLM": (minilm @ minilm.T)[upper], "e5": (e5 @ e5.T)[upper]}
    moved = shipped_model().rule_thresholds
    print(f"{len(rows)} messages: {same.sum()} same-intent pairs, {(~same).sum()} others")
    print("cut-off        encoder  value  paraphrases matched  unrelated let through")
    for name in ("trigger_near", "trigger", "when_to_use"):
        for encoder, cut in (("MiniLM", getattr(Thresholds(), name)), ("e5", getattr(moved, name))):
            sims = cosines[encoder]
            print(
                f"{name:<14} {encoder:<8} {cut:.3f}  {(sims[same] >= cut).mean():>19.3f}"
                f"  {(sims[~same] >= cut).mean():>21.5f}"
            )


if __name__ == "__main__":
    main()
