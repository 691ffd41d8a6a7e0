"""Demo applications built on streams-dsl."""
