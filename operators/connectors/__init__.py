"""Connectors: the public Source/Sink API (:mod:`operators.connectors.api`), the runtime's
adapters that drive them (:mod:`operators.connectors.runtime`) and the built-in file
connectors. Users import them from :mod:`streams.connectors`."""
