"""Pure domain code: imports the standard library, numpy and pydantic, never a framework."""
