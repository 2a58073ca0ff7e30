"""The index: a docstore plus one sparse and one dense part, written together as atomic generations."""
