"""The logical plan as plain data: nodes, column expressions, aggregations, windows."""
