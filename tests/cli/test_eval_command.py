"""`handoff eval` and `handoff bench decide` as a user runs them, with the real LocalDecider."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes.openai_server import FakeOpenAI, tool_call

HEADER_LINE = (
    "source,split,row_id,text,context_json,orig_label,reason,escalate,ambiguous,subtype,aux"
)
HEADER = HEADER_LINE.split(",")
MESSAGES = [
    ("bitext_20k", "I want to talk to a human agent", "explicit_request", 0, ""),
    ("bitext_20k", "can I speak with a representative please", "explicit_request", 0, ""),
    ("bitext_20k", "your service is terrible, I am so angry", "frustration", 0, ""),
    ("bitext_20k", "I want to file a complaint about your awful service", "frustration", 0, ""),
    ("bitext_20k", "I was charged twice for my order", "sensitive_topic", 0, "billing"),
    ("bitext_20k", "I need a refund for my last purchase", "sensitive_topic", 0, "refund"),
    ("bitext_20k", "I forgot my password and can't log in", "sensitive_topic", 0, "account_access"),
    ("banking77", "my card was stolen yesterday", "sensitive_topic", 0, "security_fraud"),
    ("banking77", "there's a payment I don't recognise", "sensitive_topic", 0, "security_fraud"),
    ("banking77", "when will my new card arrive?", "no_escalation", 0, ""),
    ("banking77", "which countries can I use my card in?", "no_escalation", 0, ""),
    ("clinc150", "what's the weather like in Paris tomorrow", "no_escalation", 0, ""),
    ("clinc150", "set a timer for ten minutes", "no_escalation", 0, ""),
    ("clinc150", "tell me a joke", "no_escalation", 0, ""),
    ("clinc150", "am I talking to a real person?", "no_escalation", 1, ""),
    ("bitext_20k", "how do I track my order", "no_escalation", 0, ""),
    ("bitext_20k", "ask an agent how to change my shipping address", "no_escalation", 1, ""),
    ("bitext_20k", "I need to change my delivery address", "no_escalation", 0, ""),
    ("bitext_20k", "how can I subscribe to the newsletter", "no_escalation", 0, ""),
    ("bitext_20k", "can I see the invoice for my order", "sensitive_topic", 1, "billing"),
]

SCENARIOS = [
    {
        "id": "t-er",
        "channel": "widget",
        "turns": [
            {"role": "user", "text": "How do I change my plan?"},
            {"role": "assistant", "text": "Go to Settings, then Billing, then Change plan."},
            {"role": "user", "text": "I'd rather talk to a person about this, please."},
        ],
        "expect": {"escalate_at": 2, "reason": "explicit_request"},
        "note": "",
    },
    {
        "id": "t-trap",
        "channel": "widget",
        "turns": [
            {"role": "user", "text": "Which browsers do you support?"},
            {"role": "assistant", "text": "Chrome, Firefox, Safari and Edge."},
            {"role": "user", "text": "Great, thanks!"},
        ],
        "expect": {"escalate_at": None, "reason": None},
        "note": "",
    },
]


def run_cli(*args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HANDOFF_LLM_")}
    env |= {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **extra_env}
    return subprocess.run(
        [sys.executable, "-m", "handoff.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def eval_with_llm(fake: FakeOpenAI, messages: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`handoff eval --decider llm` on the messages, with the fake model configured."""
    return run_cli(
        "eval",
        "--messages",
        str(messages),
        "--decider",
        "llm",
        *args,
        HANDOFF_LLM_BASE_URL=fake.base_url,
        HANDOFF_LLM_MODEL="fake-model",
        HANDOFF_LLM_API_KEY=fake.api_key,
    )


def write_messages(path: Path, messages: list[tuple[str, str, str, int, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(HEADER)
        for i, (source, text, reason, ambiguous, subtype) in enumerate(messages):
            escalate = 0 if reason == "no_escalation" else 1
            row = [source, "train", str(i), text, "", "x", reason, escalate, ambiguous, subtype, ""]
            writer.writerow(row)
    return path


def test_eval_prints_the_metrics_as_json(tmp_path: Path) -> None:
    messages = write_messages(tmp_path / "small.csv", MESSAGES)
    scenarios = tmp_path / "small.jsonl"
    scenarios.write_text("\n".join(json.dumps(s) for s in SCENARIOS) + "\n", encoding="utf-8")

    done = run_cli(
        "eval", "--messages", str(messages), "--scenarios", str(scenarios), "--json", "-"
    )

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    for key in ("reasons", "false_escalation_rate", "by_source", "scenarios", "escalate"):
        assert key in report
    assert set(report["reasons"]) == {
        "explicit_request",
        "frustration",
        "repeated_failed",
        "sensitive_topic",
    }
    for metrics in report["reasons"].values():
        assert set(metrics) >= {"precision", "recall", "f1", "support"}
    assert set(report["by_source"]) == {"banking77", "bitext_20k", "clinc150"}
    assert "false_escalation_rate" in report["by_source"]["clinc150"]
    assert set(report["scenarios"]) >= {"accuracy", "traps_kept", "total", "traps"}
    assert report["scenarios"]["total"] == 2
    assert report["ambiguous"]["n"] == 3
    assert report["messages"] == 20
    assert report["decisions_per_second"] > 0
    # The learned decider's cuts: a first message's, and the two after earlier turns.
    after_turns = report["meta"]["learned_threshold_after_earlier_turns"]
    assert 0 < after_turns["main_head"] < report["meta"]["learned_threshold"]
    assert 0 < after_turns["conversation_head"] < 1


def test_eval_without_data_names_both_options() -> None:
    done = run_cli("eval")
    assert done.returncode == 2
    assert "--messages" in done.stderr and "--scenarios" in done.stderr
    assert "Traceback" not in done.stderr


def test_eval_reports_a_bad_file_without_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("source,text,escalate,ambiguous\na,hi,0,0\n", encoding="utf-8")
    done = run_cli("eval", "--messages", str(bad))
    assert done.returncode == 2
    assert "missing column reason" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("after_turns", [(), ("--after-turns",)])
def test_bench_decide_prints_positive_figures(after_turns: tuple[str, ...]) -> None:
    done = run_cli("bench", "decide", "--n", "20", "--json", *after_turns)
    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)
    for key in ("p50_ms", "p99_ms", "decisions_per_second", "encoder_p50_ms", "keyword_p50_ms"):
        assert isinstance(figures[key], float) and figures[key] > 0, key
    assert figures["n"] == 20


def test_eval_runs_the_configured_llm_with_the_local_safety_net(tmp_path: Path) -> None:
    rows = [
        ("clinc150", "what's the weather like in Paris tomorrow", "no_escalation", 0, ""),
        ("bitext_20k", "I want to talk to a human agent", "explicit_request", 0, ""),
        ("clinc150", "tell me a joke", "no_escalation", 0, ""),
    ]
    messages = write_messages(tmp_path / "llm.csv", rows)
    with FakeOpenAI() as fake:
        # The model calls the tool on the weather question and chats on the rest.
        fake.push(tool_call("Escalate_To_Human", {"reason": "weather", "summary": "Weather."}))
        done = eval_with_llm(fake, messages, "--json", "-")
        requests = len(fake.chat_requests)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["meta"]["decider"] == "LearnedDecider + LLM"  # the default local decider
    assert requests == 3  # one model call per decision
    assert report["false_escalation_rate"] == 0.5  # the tool call on the weather question
    assert report["reasons"]["explicit_request"]["recall"] == 1.0  # the safety net held


def test_eval_refuses_llm_when_none_is_configured(tmp_path: Path) -> None:
    messages = write_messages(tmp_path / "one.csv", MESSAGES[:1])
    done = run_cli("eval", "--messages", str(messages), "--decider", "llm")
    assert done.returncode == 2
    assert "HANDOFF_LLM_BASE_URL" in done.stderr


# --- a corpus folder --------------------------------------------------------------------------

HELDOUT = Path(__file__).resolve().parents[2] / "corpus" / "escalation" / "heldout"

REPEATS = [
    {"role": "user", "text": "How do I export my invoices as PDF?"},
    {"role": "assistant", "text": "Open Billing and choose Export."},
    {"role": "user", "text": "How do I export my invoices as a PDF?"},
    {"role": "assistant", "text": "Open Billing and choose Export."},
]
CORPUS_LINES = [
    ("en-1", "en", "I want to talk to a human agent", [], "explicit_request", False),
    # Only its context (the same question asked twice already) makes this an escalation.
    ("en-2", "en", "How do I export my invoices as PDF?", REPEATS, "repeated_failed", False),
    ("en-3", "en", "what are your opening hours?", [], "no_escalation", False),
    ("de-1", "de", "Wie lange dauert die Lieferung?", [], "no_escalation", True),
    ("de-2", "de", "Ich möchte mit einem Mitarbeiter sprechen.", [], "explicit_request", False),
]


def write_corpus(folder: Path) -> Path:
    folder.mkdir()
    lines = [
        {"id": i, "lang": lang, "text": text, "context": ctx, "reason": reason, "subtype": None}
        | {"hard_negative": hard}
        for i, lang, text, ctx, reason, hard in CORPUS_LINES
    ]
    (folder / "messages.jsonl").write_text(
        "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), encoding="utf-8"
    )
    conversations = [
        {**SCENARIOS[0], "id": "c-en-1", "lang": "en"},
        {**SCENARIOS[1], "id": "c-de-1", "lang": "de"},
    ]
    (folder / "conversations.jsonl").write_text(
        "".join(json.dumps(c) + "\n" for c in conversations), encoding="utf-8"
    )
    return folder


def test_eval_on_a_corpus_prints_a_row_per_language(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "tiny")
    out = tmp_path / "metrics.json"

    # The rules decider: its figures on this tiny corpus are known (it catches the repeat).
    done = run_cli(
        "eval", "--corpus", str(corpus), "--decider", "local", "--json", str(out), "--errors", "3"
    )

    assert done.returncode == 0, done.stderr
    assert "Per language" in done.stdout and "Conversations per language" in done.stdout
    for lang in ("en", "de", "all"):
        assert re.search(rf"^\s*{lang}\s+\d", done.stdout, re.MULTILINE), lang
    report = json.loads(out.read_text(encoding="utf-8"))
    assert list(report["by_lang"]) == ["en", "de"]
    assert [report["by_lang"][lang]["n"] for lang in ("en", "de")] == [3, 2]
    assert report["by_lang"]["de"]["hard_negatives"]["hard_negative"]["n"] == 1
    assert set(report["by_lang"]["en"]) >= {"reasons", "escalate", "false_escalation_rate"}
    assert list(report["scenarios_by_lang"]) == ["en", "de"]
    assert report["scenarios_by_lang"]["de"]["traps"] == 1
    assert report["by_lang"]["en"]["reasons"]["repeated_failed"]["tp"] == 1  # context counted
    assert report["meta"]["corpus_path"] == str(corpus)
    assert {"false_escalations", "missed", "scenarios"} <= set(report["errors"])


def test_eval_on_the_heldout_corpus_counts_every_line() -> None:
    done = run_cli("eval", "--corpus", str(HELDOUT), "--decider", "local", "--json", "-")

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["messages"] == 616
    assert report["headline"]["n"] == 616
    assert report["scenarios"]["total"] == 63
    assert list(report["by_lang"]) == ["en", "es", "fr", "de", "pt", "it", "hi-en"]
    assert list(report["scenarios_by_lang"]) == list(report["by_lang"])
    assert all(b["n"] == 88 for b in report["by_lang"].values())
    assert all(s["total"] == 9 for s in report["scenarios_by_lang"].values())
    assert report["headline"]["hard_negatives"]["hard_negative"]["n"] == 141


def test_eval_takes_a_corpus_or_files_not_both(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "tiny")
    messages = write_messages(tmp_path / "one.csv", MESSAGES[:1])
    done = run_cli("eval", "--corpus", str(corpus), "--messages", str(messages))
    assert done.returncode == 2
    assert "--corpus" in done.stderr and "Traceback" not in done.stderr


def test_eval_names_a_missing_corpus_folder(tmp_path: Path) -> None:
    done = run_cli("eval", "--corpus", str(tmp_path / "nowhere"))
    assert done.returncode == 2
    assert "nowhere: not a directory" in done.stderr and "Traceback" not in done.stderr


def test_loso_needs_the_messages_to_score(tmp_path: Path) -> None:
    scenarios = tmp_path / "s.jsonl"
    scenarios.write_text(json.dumps(SCENARIOS[0]) + "\n", encoding="utf-8")
    done = run_cli("eval", "--scenarios", str(scenarios), "--loso")
    assert done.returncode == 2
    assert "--loso needs --messages" in done.stderr
    assert "Traceback" not in done.stderr


def test_eval_grounds_the_llm_on_the_knowledge_base_as_a_turn_does(tmp_path: Path) -> None:
    rows = [("bitext_20k", "how can I reset my password?", "no_escalation", 0, "")]
    messages = write_messages(tmp_path / "faq.csv", rows)
    with FakeOpenAI() as fake:
        done = eval_with_llm(fake, messages)
        prompt = json.dumps(fake.chat_requests)
    assert done.returncode == 0, done.stderr
    # The demo agent's FAQ entry on passwords reached the model, as in a live conversation.
    assert "Forgot password" in prompt


def test_bench_decide_times_the_rules_on_request_and_names_a_wrong_decider() -> None:
    done = run_cli("bench", "decide", "--n", "5", "--json", "--decider", "rules")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["n"] == 5
    wrong = run_cli("bench", "decide", "--decider", "magic")
    assert wrong.returncode == 2
    assert "choose learned or rules" in wrong.stderr
