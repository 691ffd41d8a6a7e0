"""The bottom layer: errors, records, serdes, wire format and policies (no DSL, no runtime)."""
