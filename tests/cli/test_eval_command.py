"""`handoff eval` and `handoff bench decide` as a user runs them, with the real LocalDecider."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

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


def test_bench_decide_prints_positive_figures() -> None:
    done = run_cli("bench", "decide", "--n", "20", "--json")
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
        done = run_cli(
            "eval",
            "--messages",
            str(messages),
            "--decider",
            "llm",
            "--json",
            "-",
            HANDOFF_LLM_BASE_URL=fake.base_url,
            HANDOFF_LLM_MODEL="fake-model",
            HANDOFF_LLM_API_KEY=fake.api_key,
        )
        requests = len(fake.chat_requests)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["meta"]["decider"] == "ModelDecider"
    assert requests == 3  # one model call per decision
    assert report["false_escalation_rate"] == 0.5  # the tool call on the weather question
    assert report["reasons"]["explicit_request"]["recall"] == 1.0  # the safety net held


def test_eval_refuses_llm_when_none_is_configured(tmp_path: Path) -> None:
    messages = write_messages(tmp_path / "one.csv", MESSAGES[:1])
    done = run_cli("eval", "--messages", str(messages), "--decider", "llm")
    assert done.returncode == 2
    assert "HANDOFF_LLM_BASE_URL" in done.stderr
