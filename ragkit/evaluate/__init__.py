"""Evaluation: dataset readers (BEIR and QA layouts) and retrieval metrics computed with ranx."""
