"""The runtime: brokers (embedded and Kafka), tasks and the worker that runs them."""
