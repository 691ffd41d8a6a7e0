"""The compiler: logical plan -> physical plan (sub-topologies, fused chains, topics), describe."""
