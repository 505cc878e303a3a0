"""What the user writes and what the lock pins: layer.toml, requirements, lock.json, target."""
