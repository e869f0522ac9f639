"""One module per outside system; driver errors become rag.core.errors at this boundary."""
