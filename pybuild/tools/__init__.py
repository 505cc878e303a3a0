"""Commands that inspect layers rather than build them: diff and doctor."""
