"""The AI side: answering users from a knowledge base (later: an LLM that is offered tools)."""

from handoff.agent.knowledge import KnowledgeBase, KnowledgeEntry

__all__ = ["KnowledgeBase", "KnowledgeEntry"]
