"""The Nodes context: custom node types, their versions and the marketplace around them."""
